import Foundation
@testable import GustDaemon
import Testing

/// What a zygote says comes from the app's own code (it runs in the zygote's process, and can
/// write to the control socket): gustd's part of each message is bounded, however often it comes.
/// A Python process stands in for the zygote, as hostile as an app can make it.
@Suite struct ZygoteMessagesTests {
    /// Descriptors of this process open on a user namespace (`/proc/PID/ns/user`).
    static func userNamespacesOpen() -> Int {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return fds.filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)"))?.hasPrefix("user:[") == true }.count
    }

    /// A zygote that says `ready` 300 times, each with a pidfd of itself, and reports 5,000 exits
    /// of forks gustd never asked for; then ends.
    static let hostile = """
        import json, os, socket
        control = socket.socket(fileno=3)
        me = os.pidfd_open(os.getpid())
        for _ in range(300):
            socket.send_fds(control, [json.dumps({"ready": True}).encode()], [me])
        for pid in range(1000, 6000):
            control.send(json.dumps({"exited": pid, "status": 0}).encode())
        """

    /// A zygote whose app patched the runtime: it answers each fork with a descriptor that is no
    /// pidfd of a child of its own (a pipe, or a pidfd of itself) and a pid of its choosing (1: a
    /// `kill(-1)` when gustd stopped the "fork" would reach every process gustd's uid may signal).
    static let lying = """
        import json, os, socket
        control = socket.socket(fileno=3)
        me = os.pidfd_open(os.getpid())
        socket.send_fds(control, [json.dumps({"ready": True}).encode()], [me])
        for answer in range(3):
            message, fds, _, _ = socket.recv_fds(control, 65536, 16)
            request = json.loads(message)
            lie = [os.pipe()[0], me, os.pidfd_open(os.getpid())][answer]
            socket.send_fds(control, [json.dumps({"forked": request["fork"], "pid": 1}).encode()], [lie])
        control.recv(1)
        """

    @Test func aForkAnsweredWithoutAPidfdOfTheZygotesChildIsRefused() async throws {
        let zygote = try Zygote(id: "lying") { control in
            try InstanceProcess(
                executable: "/usr/bin/python3", arguments: ["-c", Self.lying], environment: [:], directory: "/",
                passing: [control], onOutput: { _, _ in }, onExit: { _ in }
            )
        }
        defer { zygote.process.signal(SIGKILL) }
        #expect(try await zygote.readiness() == .ready)
        for answer in ["a pipe", "the zygote's own pidfd", "another pidfd of the zygote"] {
            let asked = try zygote.ask(id: "f-\(answer.count)", socketPath: "/nonexistent", environment: [:], internalToken: "x")
            await #expect(throws: Zygote.Failure.self, "\(answer) is no fork") { try await asked.answer(within: .seconds(10)) }
        }
    }

    @Test func repeatedReadyAndExitReportsOfUnknownForksHoldNothingOfGustds() async throws {
        let before = Self.userNamespacesOpen()
        let zygote = try Zygote(id: "hostile") { control in
            try InstanceProcess(
                executable: "/usr/bin/python3", arguments: ["-c", Self.hostile], environment: [:], directory: "/",
                passing: [control], onOutput: { _, _ in }, onExit: { _ in }
            )
        }
        #expect(try await zygote.readiness() == .ready)
        #expect(await zygote.process.exitStatus() == 0)
        // The control socket read to its end (the reader then marks it closed): no report of 4242 was kept.
        #expect(zygote.exitStatus(of: 4242) == SIGKILL, "an exit report of a fork gustd never made is not kept")
        // Other suites running beside this one open a namespace or two for a moment (they counted 2 in
        // a CI run); the leak was one per `ready`, 299 here.
        #expect(Self.userNamespacesOpen() - before < 20, "every ready after the first opened a namespace gustd never closed")
    }
}
