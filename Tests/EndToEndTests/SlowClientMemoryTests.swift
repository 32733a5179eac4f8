import Foundation
import Glibc
import GustCore
import GustTesting
import Testing

/// An answer waits for a client that does not read it in the instance, held back, not in
/// gustd's memory: whole answers of up to 32 MiB were collected and handed to the client's
/// connection, the instance free for the next call, so clients that asked for a big op's answer
/// and never read it held that much of gustd each, until the idle timeout, without end in number.
@Suite(.timeLimit(.minutes(10)))
struct SlowClientMemoryTests {
    static let app = """
        import gust

        @gust.op('big')
        def big():
            return 'x' * (16 * 1024 * 1024)
        """

    /// The same op, its answer written by the app's own code (as any app's code can) chunked, or
    /// framed by the connection's end: gustd collected those whole, up to 32 MiB a client.
    static func appFraming(_ framing: String) -> String {
        """
        import gust
        from gust import server

        _send = server._send

        def send_framed_by_the_app(sock, method, status, headers, payload, close):
            if len(payload) < 1 << 20:
                return _send(sock, method, status, headers, payload, close)
            if "\(framing)" == "chunked":
                sock.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n")
                for at in range(0, len(payload), 1 << 16):
                    part = payload[at:at + (1 << 16)]
                    sock.sendall(b"%x\\r\\n" % len(part) + part + b"\\r\\n")
                sock.sendall(b"0\\r\\n\\r\\n")
            else:
                sock.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nConnection: close\\r\\n\\r\\n" + payload)
                sock.shutdown(1)

        server._send = send_framed_by_the_app

        @gust.op('big')
        def big():
            return 'x' * (16 * 1024 * 1024)
        """
    }

    @Test(.scratchDirectory) func clientsThatDoNotReadBigAnswersHoldNoneOfThemInGustd() throws {
        try clientsDoNotHoldGustdsMemory(app: Self.app)
    }

    @Test(.scratchDirectory, arguments: ["chunked", "close"])
    func clientsThatDoNotReadBigAnswersTheAppFramedItselfHoldNoneOfThemInGustd(framing: String) throws {
        try clientsDoNotHoldGustdsMemory(app: Self.appFraming(framing))
    }

    func clientsDoNotHoldGustdsMemory(app: String) throws {
        let fixture = try PushFixture()
        let push = try fixture.pushPython(app)
        try #require(push.status == 0, "\(push.output)")
        let gustd = try #require(fixture.gustd)
        let whole = try HTTPClient.request(port: fixture.port, "POST", "/apps/cats/_/functions/big", body: "{}", timeout: 60)
        #expect(whole.status == 200 && whole.text.count > 16 * 1024 * 1024, "a client that reads gets it all: \(whole.status)")

        func residentMB() -> Int {
            let status = (try? String(contentsOfFile: "/proc/\(gustd.pid)/status", encoding: .utf8)) ?? ""
            let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
            return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) / 1024
        }
        let before = residentMB()
        var clients: [RawConnection] = []
        for _ in 0..<16 {
            let client = try RawConnection(port: fixture.port)
            // A small window, fixed: the kernel cannot take the answer off gustd's hands either.
            var size: Int32 = 64 * 1024
            setsockopt(client.fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            client.send("POST /apps/cats/_/functions/big HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
            clients.append(client)
        }
        // As long as the answers would take to be made and handed over: gustd's size, looked at as it goes.
        var most = before
        let started = ContinuousClock.now
        while ContinuousClock.now - started < .seconds(8) {
            most = max(most, residentMB())
            usleep(100_000)
        }
        #expect(most - before < 64, "gustd grew from \(before) MB to \(most) MB with 16 clients not reading 16 MiB answers")
        clients.removeAll()
        let after = try HTTPClient.request(port: fixture.port, "POST", "/apps/cats/_/functions/big", body: "{}", timeout: 60)
        #expect(after.status == 200, "the next client is answered: \(after.status)")
    }
}
