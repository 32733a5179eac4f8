import Foundation
import GustCore
import GustTesting
import Testing

/// Issue 10, item 10: a call's time limit counts from its arrival, time spent
/// waiting for the instance included, and a call whose client has gone while
/// it waited is never run. Real gustd, a real Python app that marks each run
/// in a file.
@Suite(.timeLimit(.minutes(20)))
struct WaitingCallTests {
    static let app = """
        import time
        import gust

        @gust.op('slow')
        def slow(marker, seconds):
            print('gust-test: ran ' + marker, flush=True)
            time.sleep(seconds)
            return 'done'

        @gust.op('quick')
        def quick():
            return 'quick'

        @gust.before_save('cat')
        def slow_hook(record, original):
            time.sleep(8)
            return record

        """

    /// The runs of `slow` with this marker, printed to the app's log (a sandboxed app writes no file the test sees).
    func runs(_ fixture: PushFixture, _ marker: URL) -> Int {
        AppLogMarks.settled(fixture.home, app: "cats", prefix: "gust-test: ran ").filter { $0 == marker.path }.count
    }

    func pushApp(_ fixture: PushFixture) throws {
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app)
        try work.commit("Slow")
        let pushed = try work.push(to: fixture.remote)
        #expect(pushed.status == 0, "\(pushed.output)")
        // One instance, so that calls wait for it (with more, the pool would start another for each).
        let scaled = try GustBinaries.gust(fixture.home, ["scale", "cats", "--max", "1"])
        #expect(scaled.status == 0, "\(scaled.output)")
    }

    @Test(.scratchDirectory) func callsWhoseClientsLeftWhileWaitingNeverRun() throws {
        let fixture = try PushFixture()
        try pushApp(fixture)
        let marker = fixture.root.appendingPathComponent("runs.txt")
        let body = #"{"marker": "\#(marker.path)", "seconds": 5}"#
        let request = "POST /apps/cats/_/functions/slow HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"

        let started = ContinuousClock.now
        var clients: [RawConnection] = []
        for _ in 0..<8 {
            let client = try RawConnection(port: fixture.port)
            client.send(request)
            clients.append(client)
            usleep(50_000)  // in order: the first one is the one that runs
        }
        usleep(1_000_000)
        clients = []  // every client gives up after a second

        let quickStarted = ContinuousClock.now
        let quick = try HTTPClient.request(port: fixture.port, "POST", "/apps/cats/_/functions/quick", body: "{}", timeout: 20)
        let waited = ContinuousClock.now - quickStarted
        #expect(quick.text == #""quick""#)
        #expect(waited < .seconds(15), "the next call answered after \(waited), past its 15 s limit")

        // Long enough after the first run ended for a second one to have started and marked.
        while ContinuousClock.now - started < .seconds(8) { usleep(100_000) }
        #expect(runs(fixture, marker) == 1, "only the call already running when its client left ran: \(runs(fixture, marker)) runs")
    }

    /// gustd's resident memory, from /proc.
    func residentBytes(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }

    /// Twenty 5 MB bodies of calls queued behind a running one: gustd reads a
    /// body only once its call holds the instance, so they stay with the
    /// clients (it used to read them all first: 100 MB and more).
    @Test(.scratchDirectory) func waitingCallsHoldNoBodyInMemory() throws {
        let fixture = try PushFixture()
        try pushApp(fixture)
        let gustd = try #require(fixture.gustd)
        let marker = fixture.root.appendingPathComponent("runs.txt")
        let port = fixture.port
        let running = BackgroundCall {
            try HTTPClient.request(port: port, "POST", "/apps/cats/_/functions/slow", body: #"{"marker": "\#(marker.path)", "seconds": 8}"#)
        }
        usleep(500_000)
        let before = residentBytes(gustd.pid)
        var clients: [RawConnection] = []
        for _ in 0..<20 {
            let client = try RawConnection(port: port)
            client.send("POST /apps/cats/_/functions/quick HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n")
            client.sendPadding(5_000_000, within: 0.25)
            clients.append(client)
        }
        usleep(500_000)
        let grown = residentBytes(gustd.pid) - before
        #expect(grown < 40_000_000, "gustd grew by \(grown / 1_000_000) MB while 20 calls with 5 MB bodies waited")
        clients = []
        let first = try #require(running.wait(seconds: 20), "the running call finished").get()
        #expect(first.text == #""done""#)
    }

    @Test(.scratchDirectory) func aCallPastItsLimitWhileWaitingIs504WithoutRunning() throws {
        let fixture = try PushFixture(gustdArguments: ["--function-timeout", "2"])
        try pushApp(fixture)
        let created = try GustBinaries.gust(fixture.home, ["tokens", "create", "cats"])
        let auth = ["X-Auth-Token": created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)]
        let marker = fixture.root.appendingPathComponent("runs.txt")

        // A record write whose before-hook holds the instance for 8 s (hooks have a 10 s limit of their own).
        let port = fixture.port
        let write = BackgroundCall {
            try HTTPClient.request(port: port, "POST", "/apps/cats/_/records/cat", headers: auth, body: #"{"name": "Tom"}"#)
        }
        usleep(300_000)
        let started = ContinuousClock.now
        let call = try HTTPClient.request(port: port, "POST", "/apps/cats/_/functions/slow", body: #"{"marker": "\#(marker.path)", "seconds": 0}"#)
        let took = ContinuousClock.now - started
        #expect(call.status == 504, "\(call.text)")
        #expect(call.json?["code"] as? Int == 504)
        #expect(took < .seconds(5), "answered at its 2 s limit, not when the instance came free (7.7 s): \(took)")

        let written = try #require(write.wait(seconds: 20), "the write finished").get()
        #expect(written.status == 201, "\(written.text)")
        usleep(1_000_000)
        #expect(runs(fixture, marker) == 0, "the call that timed out waiting never ran")
        #expect(try fixture.call("POST", "/_/functions/quick", body: "{}").text == #""quick""#, "the instance still serves")
    }
}
