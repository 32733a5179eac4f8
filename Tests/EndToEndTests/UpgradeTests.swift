import Foundation
import GustCore
import GustTesting
import Testing

/// An upgrade of gustd that drops no call: a new gustd binary is installed over
/// the running one's path and `kill -USR2` hands the listening sockets (HTTP and
/// HTTPS) to it, under a continuous load of keep-alive, new-connection, slow and
/// HTTPS calls. The old process finishes its calls and exits by itself; the new
/// one serves the live release.
@Suite(.timeLimit(.minutes(20)))
struct UpgradeTests {
    static let app = """
        import time

        import gust

        @gust.op('slow')
        def slow(seconds=0.25):
            time.sleep(seconds)
            return {'slept': seconds}

        @gust.handler('hello', methods=['GET'])
        def hello(request):
            return 'hello'
        """

    @Test(.scratchDirectory) func aNewBinaryTakesOverTheSocketsWithoutFailingACall() throws {
        let root = ScratchDirectory.current
        let (cert, key) = try TLSTools.selfSigned(["gust.test", "*.gust.test"], in: root)
        // gustd runs from a copy of the built binary, which the "new version" replaces as a package manager would.
        let bin = root.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        let installed = bin.appendingPathComponent("gustd")
        try FileManager.default.copyItem(atPath: GustBinaries.gustd, toPath: installed.path)

        let fixture = try PushFixture(startGustd: false)
        let gustd = try GustdProcess(
            home: fixture.home,
            arguments: ["--domain", "gust.test", "--https", "127.0.0.1:0", "--tls-cert", cert.path, "--tls-key", key.path, "--no-acme"],
            executable: installed.path)
        defer { gustd.stop() }
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app)
        try work.commit("One")
        let push = try work.push(to: fixture.remote)
        try #require(push.status == 0, "\(push.output)")
        let scaled = try GustBinaries.gust(fixture.home, ["scale", "cats", "--min", "2", "--max", "16"])
        try #require(scaled.status == 0, "\(scaled.output)")
        let httpsPort = try TLSTools.httpsPort(fixture.home)
        try #require(try HTTPClient.request(port: gustd.port, "GET", "/apps/cats/hello").status == 200)
        let oldPID = gustd.pid
        let oldBinary = try inode(installed.path)

        let load = try UpgradeLoad(port: gustd.port, httpsPort: httpsPort, ca: cert, in: root)
        Thread.sleep(forTimeInterval: 2)  // the load running, slow calls among it

        // The new version: another copy, renamed over the path gustd was started from.
        let staged = bin.appendingPathComponent(".gustd.new")
        try FileManager.default.copyItem(atPath: GustBinaries.gustd, toPath: staged.path)
        #expect(rename(staged.path, installed.path) == 0)
        let newBinary = try inode(installed.path)
        #expect(newBinary != oldBinary)
        let signalled = Date().timeIntervalSince1970
        #expect(kill(oldPID, SIGUSR2) == 0)

        let oldStatus = gustd.waitForExit(within: 60)
        let exited = Date().timeIntervalSince1970
        // gustd's own lines, without the access log's (thousands here), to say why if it did not.
        let gustdLines = { gustd.logText.split(separator: "\n").filter { !$0.contains(" method=") }.suffix(60).joined(separator: "\n") }
        #expect(oldStatus == 0, "the old gustd drains and exits by itself (128 + a signal's number if one ended it: 132 is a Swift trap)\n\(gustdLines())")
        let newPID = try #require(gustd.adoptSuccessor(), "a new gustd wrote run/gustd.pid\n\(gustdLines())")
        #expect(newPID != oldPID)
        #expect(try inode("/proc/\(newPID)/exe") == newBinary, "the new process runs the new binary")
        // The new gustd under the same load: every kind of call answered, for calls made after the old one left.
        let answered = load.waitForAnswers(startedAfter: exited)
        let outcomes = try load.stop()
        #expect(answered, "every kind of call answered 200 by the new gustd")

        let failures = outcomes.filter { $0.status != 200 }
        #expect(failures.isEmpty, "\(failures.count) of \(outcomes.count) calls failed: \(failures.prefix(10))\n\(gustdLines())")
        let inFlight = outcomes.filter { $0.kind.contains("slow") && $0.start < signalled && $0.end > signalled }
        #expect(!inFlight.isEmpty, "slow calls were in flight when USR2 came")
        #expect(inFlight.allSatisfy { $0.status == 200 })
        let retried = outcomes.filter(\.retried).count
        print("upgrade under load: \(outcomes.count) calls, \(failures.count) failed, \(inFlight.count) slow ones in flight at USR2, "
            + "\(retried) sent again after the old gustd closed an idle keep-alive connection; old gustd exited "
            + String(format: "%.2f s after USR2", exited - signalled))

        // The live release answers from the new gustd, which is the one serving.
        #expect(try HTTPClient.request(port: gustd.port, "GET", "/apps/cats/hello").text == "hello")
        #expect(try TLSTools.curl("cats.gust.test", port: httpsPort, path: "/hello", ca: cert).stdout.hasSuffix("200"))
        #expect(gustd.logText.contains("hands over"))
    }

    /// `systemctl restart gustd` with gustd.socket, systemd played by `SocketHolder`: the socket stays
    /// open, the old gustd (its socket from "systemd") stops accepting before it drains, connections
    /// wait in the socket for the new one, and no call fails.
    @Test(.scratchDirectory) func aRestartWithItsSocketFromSystemdFailsNoCall() throws {
        let root = ScratchDirectory.current
        let held = try HeldGustd(in: root)
        defer { held.stop() }
        let (fixture, holder, first) = (held.fixture, held.holder, held.first)
        #expect(holder.logText.contains("serves the socket it was given (127.0.0.1:\(first.port))"), "\(holder.logText)")

        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app)
        try work.commit("One")
        let push = try work.push(to: fixture.remote)
        try #require(push.status == 0, "\(push.output)")
        let scaled = try GustBinaries.gust(fixture.home, ["scale", "cats", "--min", "2", "--max", "16"])
        try #require(scaled.status == 0, "\(scaled.output)")
        try #require(try HTTPClient.request(port: first.port, "GET", "/apps/cats/hello").status == 200)

        let load = try UpgradeLoad(port: first.port, in: root)
        Thread.sleep(forTimeInterval: 2)
        let restarted = Date().timeIntervalSince1970
        holder.restart()
        let second = try #require(holder.wait(seconds: 60) { $0.pids.count == 2 }, "restarted\n\(holder.logText)")
        let started = Date().timeIntervalSince1970
        // gustd's own lines, without the access log's (thousands here), to say why if it did not.
        let gustdLines = { holder.logText.split(separator: "\n").filter { !$0.contains(" method=") }.suffix(60).joined(separator: "\n") }
        #expect(second.exits == [0], "the old gustd drained and exited 0 (a negative exit is the signal that ended it)\n\(gustdLines())")
        // The new gustd starting under the load, then serving it: every kind of call answered, for calls made since.
        let answered = load.waitForAnswers(startedAfter: started)
        let outcomes = try load.stop()
        #expect(answered, "every kind of call answered 200 by the new gustd")

        let failures = outcomes.filter { $0.status != 200 }
        #expect(failures.isEmpty, "\(failures.count) of \(outcomes.count) calls failed: \(failures.prefix(10))\n\(gustdLines())")
        let inFlight = outcomes.filter { $0.kind.contains("slow") && $0.start < restarted && $0.end > restarted }
        #expect(!inFlight.isEmpty && inFlight.allSatisfy { $0.status == 200 })
        print("restart with systemd's socket under load: \(outcomes.count) calls, \(failures.count) failed, \(inFlight.count) slow ones in flight, "
            + "\(outcomes.filter(\.retried).count) sent again on a new connection; the old gustd drained and the new one was started "
            + String(format: "%.2f s after the restart", started - restarted))
        #expect(try HTTPClient.request(port: first.port, "GET", "/apps/cats/hello").text == "hello")
        #expect(holder.logText.contains("stops accepting (its listening sockets stay open for the next gustd)"))
    }

    /// The same restart with a WebSocket open: the old gustd drains its listeners before its pools,
    /// and a spliced socket, in the middle of its request, got its 1001 only from the pools' drain,
    /// so the listeners' drain waited for it up to the shutdown bound (23 s) while nothing accepted.
    /// Its sockets now let go (1001) before the listeners drain.
    @Test(.scratchDirectory) func aRestartWithAWebSocketOpenClosesItAt1001AndWaitsForNothing() throws {
        let root = ScratchDirectory.current
        let held = try HeldGustd(in: root)
        defer { held.stop() }
        let (fixture, holder, first) = (held.fixture, held.holder, held.first)

        let work = try fixture.workspace("ws")
        try MountTests.vendor("ws", into: work.directory.appendingPathComponent("node_modules"))
        try work.write("package.json", #"{"name": "ws-echo", "version": "1.0.0", "main": "index.js", "private": true}"#)
        try work.write("index.js", """
            const { WebSocketServer } = require('ws');
            const gust = require('gust');

            const sockets = new WebSocketServer({ server: gust.server, path: '/echo' });
            sockets.on('connection', (socket) => socket.on('message', (data) => socket.send(`echo: ${data}`)));
            gust.handler('hello', () => 'hello');

            """)
        try work.commit("ws")
        let push = try work.push(to: fixture.remote)
        try #require(push.status == 0, "\(push.output)")

        let waiting = try WebSocketTests.waitingClient("ws://127.0.0.1:\(first.port)/apps/cats/echo", opened: root.appendingPathComponent("opened"))
        let restarted = Date()
        holder.restart()
        let closed = waiting.wait(seconds: 10)
        let lines = (try? closed?.get()).map(WebSocketTests.lines) ?? []
        #expect(lines.last?["close"] as? Int == 1001, "the socket's last word: \(lines)")
        let second = try #require(holder.wait(seconds: 60) { $0.pids.count == 2 }, "restarted\n\(holder.logText)")
        #expect(Date().timeIntervalSince(restarted) < 12, "the old gustd drained in \(Date().timeIntervalSince(restarted)) s")
        #expect(second.exits == [0])
        #expect(try HTTPClient.request(port: first.port, "GET", "/apps/cats/hello", timeout: 20).text == "hello")
    }

    /// gustd under `SocketHolder` (systemd's socket, played), serving; `stop()` ends both.
    struct HeldGustd {
        let fixture: PushFixture
        let holder: SocketHolder
        let first: SocketHolder.State
        let cgroupRoot = "gust-test-" + UUID().uuidString.prefix(8).lowercased()

        init(in root: URL) throws {
            fixture = try PushFixture(startGustd: false)
            holder = try SocketHolder(
                gustd: GustBinaries.gustd, arguments: ["--home", fixture.home.path, "--http", "127.0.0.1:0", "--cgroup-root", cgroupRoot], in: root)
            guard let first = holder.wait(seconds: 15, until: { !$0.pids.isEmpty }) else {
                holder.stop()
                throw HTTPClientErrorText("gustd did not start under the holder\n\(holder.logText)")
            }
            self.first = first
            let addressFile = fixture.home.run.appendingPathComponent("gustd.http")
            for _ in 0..<300 where !FileManager.default.fileExists(atPath: addressFile.path) { usleep(50_000) }
            guard FileManager.default.fileExists(atPath: addressFile.path) else {
                stop()
                throw HTTPClientErrorText("gustd does not serve\n\(holder.logText)")
            }
        }

        func stop() {
            holder.stop()
            GustdProcess.cleanUp(home: fixture.home, cgroupRoot: cgroupRoot)
        }
    }

    private func inode(_ path: String) throws -> UInt {
        var info = stat()
        guard stat(path, &info) == 0 else { throw HTTPClientErrorText("stat \(path): errno \(errno)") }
        return UInt(info.st_ino)
    }
}
