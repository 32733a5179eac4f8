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

        @gust.handler('wait', methods=['GET'])
        def wait(request):
            print('gust-test: ran ' + request.query['marker'], flush=True)
            time.sleep(float(request.query['seconds']))
            return 'waited'

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

    /// The same rules for a handler's call without a body, which waits in the gateway's lane
    /// (a callback in the pool's queue, no task): a full queue is 503 JSON with `Retry-After`, a
    /// call whose client left while it waited never runs, and the call that stayed runs next.
    @Test(.scratchDirectory) func handlerCallsWaitingInTheLaneKeepTheQueuesRules() throws {
        let fixture = try PushFixture(gustdArguments: ["--queue-limit", "3"])
        try pushApp(fixture)
        let port = fixture.port
        @Sendable func wait(_ marker: String, _ seconds: Double) -> String {
            let query = "marker=\(marker)&seconds=\(seconds)".addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? ""
            return "/apps/cats/wait?" + query
        }
        let ran = fixture.root.appendingPathComponent("ran").path
        let left = fixture.root.appendingPathComponent("left").path
        let stayed = fixture.root.appendingPathComponent("stayed").path

        let running = BackgroundCall { try HTTPClient.request(port: port, "GET", wait(ran, 3)) }
        usleep(500_000)
        // Two that leave after a while, sent as browsers and wrk send them (keep-alive, no `Connection: close`).
        var leaving: [RawConnection] = []
        for _ in 0..<2 {
            let client = try RawConnection(port: port)
            client.send("GET \(wait(left, 0)) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n")
            leaving.append(client)
        }
        usleep(200_000)
        let staying = BackgroundCall { try HTTPClient.request(port: port, "GET", wait(stayed, 0)) }
        usleep(300_000)
        // One running, three waiting: the queue is full.
        let refused = try HTTPClient.request(port: port, "GET", wait(left, 0))
        #expect(refused.status == 503, "\(refused.text)")
        #expect(refused.json?["code"] as? Int == 503)
        #expect((refused.json?["error"] as? String)?.contains("calls are already waiting") == true, "\(refused.text)")
        #expect(refused.headers["retry-after"] != nil || refused.headers["Retry-After"] != nil, "\(refused.headers)")
        leaving = []  // their clients give up while they wait

        let first = try #require(running.wait(seconds: 30), "the running call finished").get()
        #expect(first.text == "waited", "\(first.status) \(first.text)")
        let next = try #require(staying.wait(seconds: 30), "the waiting call finished").get()
        #expect(next.status == 200 && next.text == "waited", "\(next.status) \(next.text)")
        usleep(1_000_000)
        let marks = AppLogMarks.settled(fixture.home, app: "cats", prefix: "gust-test: ran ")
        #expect(marks.filter { $0 == ran }.count == 1 && marks.filter { $0 == stayed }.count == 1, "\(marks)")
        #expect(!marks.contains(left), "calls whose clients left while they waited, or refused, never ran: \(marks)")
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
        let before = RawConnection.residentBytes(gustd.pid)
        var clients: [RawConnection] = []
        for _ in 0..<20 {
            let client = try RawConnection(port: port)
            client.send("POST /apps/cats/_/functions/quick HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n")
            client.sendPadding(5_000_000, within: 0.25)
            clients.append(client)
        }
        usleep(500_000)
        let grown = RawConnection.residentBytes(gustd.pid) - before
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
        // The same for a handler's call without a body (the gateway's lane).
        let handlerStarted = ContinuousClock.now
        let handler = try HTTPClient.request(port: port, "GET", "/apps/cats/wait?marker=\(marker.path)&seconds=0")
        let handlerTook = ContinuousClock.now - handlerStarted
        #expect(handler.status == 504 && handler.json?["code"] as? Int == 504, "\(handler.status) \(handler.text)")
        #expect(handlerTook < .seconds(4), "answered at its 2 s limit: \(handlerTook)")

        let written = try #require(write.wait(seconds: 20), "the write finished").get()
        #expect(written.status == 201, "\(written.text)")
        usleep(1_000_000)
        #expect(runs(fixture, marker) == 0, "the call that timed out waiting never ran")
        #expect(try fixture.call("POST", "/_/functions/quick", body: "{}").text == #""quick""#, "the instance still serves")
    }
}
