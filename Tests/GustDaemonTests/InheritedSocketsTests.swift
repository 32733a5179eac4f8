#if canImport(Glibc)
import Glibc
#endif
import GustCore
@testable import GustDaemon
import Testing

/// How gustd reads the listening sockets it is started with (systemd's
/// socket-activation variables) and checks that one is a listening TCP socket.
struct InheritedSocketsTests {
    @Test func namedSocketsAreDescriptorsFromThreeInOrder() {
        let sockets = InheritedSockets.parse(pid: "42", count: "3", names: ["http", "https", "gustd-ready"], me: 42)
        #expect(sockets == ["http": 3, "https": 4, "gustd-ready": 5])
    }

    @Test func aLoneSocketWithoutANameIsHTTP() {
        #expect(InheritedSockets.parse(pid: "42", count: "1", names: [], me: 42) == ["http": 3])
        #expect(InheritedSockets.parse(pid: "42", count: "1", names: ["unknown"], me: 42) == ["http": 3])
    }

    @Test(arguments: [
        ("41", "1"),  // another process's (a parent that forgot to clear them)
        (nil, "1"), ("42", nil), ("42", "0"), ("42", "x"), ("x", "1"),
    ] as [(String?, String?)])
    func nothingIsInheritedUnlessTheVariablesAreForThisProcess(pid: String?, count: String?) {
        #expect(InheritedSockets.parse(pid: pid, count: count, names: ["http"], me: 42).isEmpty)
    }

    @Test func aSocketIsTakenOnceAndTheRestClosed() throws {
        var pair: [Int32] = [-1, -1]
        #expect(pipe(&pair) == 0)
        defer { close(pair[1]) }
        let inherited = InheritedSockets(["http": 1000, "metrics": pair[0]])
        #expect(inherited.take("http") == 1000)
        #expect(inherited.take("http") == nil)
        #expect(inherited.closeUntaken() == ["metrics"])
        // Closed: seen from the pipe's other end, since tests running beside this one may be given
        // the freed descriptor number at once (so asking about the number proves nothing).
        var end = pollfd(fd: pair[1], events: Int16(POLLOUT), revents: 0)
        #expect(poll(&end, 1, 0) == 1 && end.revents & Int16(POLLERR) != 0, "closed")
    }

    @Test func aSocketThatIsNotListeningIsRefused() throws {
        var pair: [Int32] = [-1, -1]
        #expect(pipe(&pair) == 0)
        defer { close(pair[0]); close(pair[1]) }
        let error = #expect(throws: GustError.self) {
            _ = try ListeningSocket.make("http", host: "127.0.0.1", port: 0, inherited: InheritedSockets(["http": pair[0]]))
        }
        #expect(error?.message.contains("not a listening TCP socket") == true)
    }

    @Test func withoutOneItBindsAndListens() throws {
        let socket = try ListeningSocket.make("http", host: "127.0.0.1", port: 0, inherited: InheritedSockets([:]))
        defer { close(socket.descriptor) }
        #expect(!socket.inherited)
        var accepting: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        #expect(getsockopt(socket.descriptor, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &size) == 0 && accepting == 1)
        let inherited = try ListeningSocket.make("http", host: "127.0.0.1", port: 0, inherited: InheritedSockets(["http": socket.descriptor]))
        #expect(inherited.inherited && inherited.descriptor == socket.descriptor)
    }

    @Test func theDateHeaderIsIMFFixdate() {
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(1_796_170_000) == "Wed, 02 Dec 2026 00:06:40 GMT")
    }
}
