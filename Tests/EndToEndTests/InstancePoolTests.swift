import Foundation
import GustCore
import GustTesting
import Synchronization
import Testing

/// An app's pool of instances behind a real gustd: calls side by side, scale
/// out and to zero, a full queue, `gust ps`, and SIGTERM under load.
@Suite(.timeLimit(.minutes(20)))
struct InstancePoolTests {
    static let app = """
        import os
        import time

        import gust

        @gust.op('slow')
        def slow(seconds=0.25):
            time.sleep(seconds)
            return {'pid': os.getpid(), 'instance': os.environ['GUST_INSTANCE']}

        @gust.handler('pid', methods=['GET'])
        def pid(request):
            return '%d %s' % (os.getpid(), os.environ['GUST_INSTANCE'])
        """

    func deployed(gustdArguments: [String] = []) throws -> PushFixture {
        let fixture = try PushFixture(gustdArguments: gustdArguments)
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app)
        try work.commit("One")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
        return fixture
    }

    func scale(_ fixture: PushFixture, _ arguments: [String]) throws {
        let result = try GustBinaries.gust(fixture.home, ["scale", "cats"] + arguments)
        #expect(result.status == 0, "\(result.output)")
    }

    func ps(_ fixture: PushFixture) throws -> [InstanceStatus] {
        let result = try GustBinaries.gust(fixture.home, ["ps", "cats", "--json"])
        #expect(result.status == 0, "\(result.output)")
        // The instances (a zygote has its own line, `kind` "zygote").
        return ((try? JSONDecoder().decode([InstanceStatus].self, from: Data(result.stdout.utf8))) ?? []).filter { $0.kind == nil }
    }

    /// `count` calls of `slow` at once; their answers in order, and the wall time.
    func slowCalls(_ fixture: PushFixture, _ count: Int, seconds: Double) -> ([HTTPResult?], Duration) {
        let answers = Mutex([HTTPResult?](repeating: nil, count: count))
        let started = ContinuousClock.now
        Self.onThreads(count) { index in
            let answer = try? HTTPClient.request(port: fixture.port, "POST", "/apps/cats/_/functions/slow", body: #"{"seconds": \#(seconds)}"#)
            answers.withLock { $0[index] = answer }
        }
        return (answers.withLock { $0 }, ContinuousClock.now - started)
    }

    /// Runs `body` on `count` threads at once (Dispatch's pool on Linux grows by
    /// about one thread a second, so it would not make the calls concurrent) and
    /// waits for all of them.
    @discardableResult
    static func onThreads(_ count: Int, wait: Bool = true, _ body: @escaping @Sendable (Int) -> Void) -> DispatchGroup {
        let group = DispatchGroup()
        for index in 0..<count {
            group.enter()
            Thread.detachNewThread {
                body(index)
                group.leave()
            }
        }
        if wait { group.wait() }
        return group
    }

    @Test(.scratchDirectory) func sixteenSlowCallsRunSideBySide() throws {
        let fixture = try deployed()
        try scale(fixture, ["--max", "16"])
        _ = slowCalls(fixture, 16, seconds: 0.5)  // the pool grows to meet them
        let (answers, took) = slowCalls(fixture, 16, seconds: 0.5)
        #expect(answers.allSatisfy { $0?.status == 200 }, "\(answers.map { $0?.status ?? 0 })")
        let instances = Set(answers.compactMap { $0?.json?["instance"] as? String })
        #expect(instances.count > 4, "16 calls went to \(instances.count) instances")
        #expect(took < .seconds(4), "16 calls of 0.5 s took \(took); one at a time would take 8 s")
        let listed = try ps(fixture)
        #expect(listed.count >= instances.count)
        #expect(listed.allSatisfy { $0.release == 1 && $0.pid != nil && ($0.memoryBytes ?? 0) > 0 }, "\(listed)")
        #expect(listed.reduce(0) { $0 + $1.served } >= 32)
    }

    /// gustd makes one event loop on a 2-core host by default, so the rest of this suite runs on
    /// one there; here calls are spread over three, and a call's client connection and the
    /// connection to its instance may sit on different loops.
    @Test(.scratchDirectory) func callsSideBySideOverSeveralEventLoops() throws {
        let fixture = try deployed(gustdArguments: ["--event-loops", "3"])
        try scale(fixture, ["--max", "6"])
        _ = slowCalls(fixture, 6, seconds: 0.3)  // the pool grows to meet them
        // 48 quick calls and 6 slow ones at once, each on a connection of its own: "ok" or what came back.
        let outcomes = Mutex([String](repeating: "", count: 54))
        Self.onThreads(54) { index in
            let slow = index >= 48
            let answer = slow
                ? try? HTTPClient.request(port: fixture.port, "POST", "/apps/cats/_/functions/slow", body: #"{"seconds": 0.2}"#)
                : try? HTTPClient.request(port: fixture.port, "GET", "/apps/cats/pid")
            let sane = answer?.status == 200 && (slow ? answer?.json?["instance"] is String : answer?.text.split(separator: " ").count == 2)
            outcomes.withLock { $0[index] = sane ? "ok" : "\(answer?.status ?? 0) \(answer?.text ?? "no answer")" }
        }
        let failed = outcomes.withLock { $0 }.filter { $0 != "ok" }
        #expect(failed.isEmpty, "\(failed)")
        let (answers, took) = slowCalls(fixture, 6, seconds: 0.5)
        #expect(answers.allSatisfy { $0?.status == 200 }, "\(answers.map { $0?.status ?? 0 })")
        #expect(took < .seconds(2), "6 calls of 0.5 s took \(took); one at a time would take 3 s")
    }

    @Test(.scratchDirectory) func anAppScaledToZeroStopsAfterIdleAndAnswersTheNextCall() throws {
        let fixture = try deployed()
        try scale(fixture, ["--min", "0", "--idle", "2s"])
        let first = try fixture.call("GET", "/pid")
        #expect(first.status == 200)
        // The pid as the instance sees it (its sandbox's), then as the host does.
        let inside = try #require(Int32(first.text.split(separator: " ").first ?? ""))
        let pid = try #require(SandboxPID.host(of: inside, under: GustdProcess.recordedInstancePIDs(of: fixture.home)))
        // Idle for 2 s, then stopped: nothing of the app runs.
        var stopped = false
        for _ in 0..<100 where !stopped {
            usleep(100_000)
            stopped = try !GustdProcess.isAlive(pid) && ps(fixture).isEmpty
        }
        let left = try ps(fixture)
        #expect(stopped, "instance \(pid) still runs: \(left)")
        #expect(try fixture.call("GET", "/_/health").json?["state"] as? String == "idle")
        let next = try fixture.call("GET", "/pid")
        #expect(next.status == 200)
        #expect(next.text != first.text, "a new instance answers")
    }

    @Test(.scratchDirectory) func aFullQueueAnswers503WithRetryAfter() throws {
        let fixture = try deployed(gustdArguments: ["--queue-limit", "2"])
        try scale(fixture, ["--max", "1"])
        let (answers, _) = slowCalls(fixture, 6, seconds: 1)
        let statuses = answers.map { $0?.status ?? 0 }
        #expect(statuses.filter { $0 == 200 }.count == 3, "one running and two waiting: \(statuses)")
        let refused = answers.compactMap { $0 }.filter { $0.status == 503 }
        #expect(refused.count == 3, "\(statuses)")
        for answer in refused {
            #expect(answer.json?["code"] as? Int == 503)
            #expect((answer.json?["error"] as? String)?.contains("calls are already waiting") == true, "\(answer.text)")
            #expect(answer.headers["retry-after"] != nil || answer.headers["Retry-After"] != nil, "\(answer.headers)")
        }
    }

    @Test(.scratchDirectory) func sigtermUnderLoadLetsCallsInFlightFinishAndExitsCleanly() throws {
        let fixture = try deployed()
        try scale(fixture, ["--max", "2"])
        let gustd = try #require(fixture.gustd)
        _ = slowCalls(fixture, 2, seconds: 0.1)  // two instances up
        let pids = GustdProcess.recordedInstancePIDs(of: fixture.home)
        let answers = Mutex([Int]())
        let group = Self.onThreads(8, wait: false) { _ in
            let answer = try? HTTPClient.request(port: fixture.port, "POST", "/apps/cats/_/functions/slow", body: #"{"seconds": 1.5}"#)
            answers.withLock { $0.append(answer?.status ?? 0) }
        }
        usleep(500_000)  // two calls running, six waiting
        let status = gustd.terminate(within: 20)
        #expect(status == 0, "gustd did not exit 0 within 20 s: \(status.map(String.init) ?? "still running")")
        #expect(group.wait(timeout: .now() + 10) == .success)
        let statuses = answers.withLock { $0 }
        #expect(statuses.filter { $0 == 200 }.count == 2, "the calls in flight finish: \(statuses)")
        #expect(statuses.filter { $0 == 503 }.count == 6, "the waiting ones get 503: \(statuses)")
        for pid in pids { #expect(!GustdProcess.isAlive(pid), "instance \(pid) outlived gustd") }
    }

    /// A hook a call causes runs on that call's instance, outside the pool's count: at `max 1`
    /// with the queue full, the op's own write still runs its before-hook and answers.
    @Test(.scratchDirectory) func aNestedHookNeverWaitsForAFullPool() throws {
        let fixture = try PushFixture(gustdArguments: ["--queue-limit", "2"])
        let work = try fixture.workspace("py")
        try work.write("__init__.py", """
            import time

            import gust

            @gust.before_save('cat')
            def check(record, original):
                record['checked'] = True
                return record

            @gust.op('adopt')
            def adopt(name):
                time.sleep(0.5)
                return gust.records.save('cat', {'name': name})

            @gust.op('slow')
            def slow(seconds=1):
                time.sleep(seconds)
                return 'ok'
            """)
        try work.commit("Hooks")
        #expect(try work.push(to: fixture.remote).status == 0)
        try scale(fixture, ["--max", "1"])

        let adopted = Mutex<HTTPResult?>(nil)
        let adopter = Self.onThreads(1, wait: false) { _ in
            let answer = try? HTTPClient.request(port: fixture.port, "POST", "/apps/cats/_/functions/adopt", body: #"{"name": "tom"}"#, timeout: 20)
            adopted.withLock { $0 = answer }
        }
        usleep(200_000)  // adopt holds the one instance
        let others = Mutex([Int]())
        let waiting = Self.onThreads(3, wait: false) { _ in
            let answer = try? HTTPClient.request(port: fixture.port, "POST", "/apps/cats/_/functions/slow", body: "{}", timeout: 20)
            others.withLock { $0.append(answer?.status ?? 0) }
        }
        #expect(adopter.wait(timeout: .now() + 15) == .success, "the op whose hook needs the full pool never answered")
        let answer = adopted.withLock { $0 }
        #expect(answer?.status == 200, "\(answer?.text ?? "no answer")")
        #expect(answer?.json?["checked"] as? Bool == true, "the before-hook ran: \(answer?.text ?? "")")
        #expect(waiting.wait(timeout: .now() + 15) == .success)
        let statuses = others.withLock { $0 }.sorted()
        #expect(statuses == [200, 200, 503], "two waited, one found the queue full: \(statuses)")
    }
}
