import Foundation
import GustCore
import GustTesting
import Synchronization
import Testing

/// A push goes live behind gustd, a rollback comes back, and callers never see a failed request.
@Suite(.timeLimit(.minutes(20)))
struct RouterTests {
    /// A Python app whose answers name the release they come from.
    static func pythonApp(_ work: GitWorkspace, version: String) throws {
        try work.write("__init__.py", """
            import os
            import time

            import gust

            calls = {'count': 0}

            @gust.op('hello')
            def hello(name='world'):
                calls['count'] += 1
                return {'greeting': f'Hello, {name}!', 'version': '\(version)', 'calls': calls['count']}

            @gust.handler('version', methods=['GET'])
            def version(request):
                return '\(version)\\n'

            @gust.handler('echo', methods=['POST', 'PUT'])
            def echo(request):
                return gust.Response({'method': request.method, 'query': request.query, 'body': request.json()}, status=201)

            @gust.op('crash')
            def crash():
                os._exit(3)

            @gust.op('sleep')
            def sleep(seconds=30):
                time.sleep(seconds)
                return 'woke'

            @gust.op('fail')
            def fail():
                raise RuntimeError('secret internals')

            @gust.op('refuse')
            def refuse():
                raise gust.Error('No cats today', code=409)

            """)
    }

    @Test(.scratchDirectory) func pythonAndNodeAnswerByHostAndByPath() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try Self.pythonApp(work, version: "one")
        try work.commit("One")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
        #expect(push.stderr.contains("remote:        op       hello"))
        #expect(push.stderr.contains("remote:        handler  GET /version"))
        #expect(push.stderr.contains("http://cats.localhost:\(fixture.port)/"))
        #expect(push.stderr.contains("remote: -----> v1 is live"))

        let byPath = try fixture.call("POST", "/_/functions/hello", body: #"{"name": "Ada"}"#)
        #expect(byPath.status == 200)
        #expect(byPath.json?["greeting"] as? String == "Hello, Ada!")
        let byHost = try fixture.callByHost("POST", "/_/functions/hello", body: "{}")
        #expect(byHost.json?["greeting"] as? String == "Hello, world!")
        // Module state survives between calls to the same instance.
        #expect((byHost.json?["calls"] as? Int ?? 0) > (byPath.json?["calls"] as? Int ?? 0))
        #expect(try fixture.callByHost("GET", "/version").text == "one\n")

        let echo = try fixture.call("PUT", "/echo?x=1", body: #"{"a": [1, 2]}"#)
        #expect(echo.status == 201)
        #expect(echo.json?["method"] as? String == "PUT")
        #expect((echo.json?["query"] as? [String: String]) == ["x": "1"])

        // The error contract.
        let wrongMethod = try fixture.call("GET", "/echo")
        #expect(wrongMethod.status == 405)
        #expect(wrongMethod.headers["allow"] == "POST, PUT")
        #expect(try fixture.call("POST", "/_/functions/nope", body: "{}").status == 404)
        #expect(try fixture.call("GET", "/nowhere").status == 404)
        #expect(try fixture.call("POST", "/_/functions/hello", body: "not json").status == 400)
        #expect(try fixture.call("POST", "/_/functions/hello", body: #"{"colour": "red"}"#).status == 400)
        #expect(try fixture.call("GET", "/_/functions/hello").status == 405)
        let refused = try fixture.call("POST", "/_/functions/refuse", body: "{}")
        #expect(refused.status == 409)
        #expect(refused.json?["error"] as? String == "No cats today")
        let failed = try fixture.call("POST", "/_/functions/fail", body: "{}")
        #expect(failed.status == 500)
        #expect(!failed.text.contains("secret internals"))
        let logs = try GustBinaries.gust(fixture.home, ["logs", "cats", "-n", "50"]).stdout
        #expect(logs.contains("RuntimeError: secret internals"), "the traceback goes to the app's log")
        #expect(try HTTPClient.request(port: fixture.port, "GET", "/apps/dogs/").status == 404)
        let health = try fixture.call("GET", "/_/health")
        #expect(health.json?["release"] as? String == "v1")

        // A Node app beside it, in the same gustd.
        #expect(try GustBinaries.gust(fixture.home, ["apps", "create", "reviews"]).status == 0)
        let node = try fixture.workspace("node", copying: PushFixture.example("node-reviews"))
        try node.commit("Reviews")
        let nodePush = try node.push(to: fixture.home.repository(try AppName("reviews")).path)
        #expect(nodePush.status == 0, "\(nodePush.output)")
        let greeting = try HTTPClient.request(port: fixture.port, "POST", "/_/functions/hello", host: "reviews.localhost", body: #"{"name": "Bo"}"#)
        #expect(greeting.json?["greeting"] as? String == "Hello, Bo!")
        let about = try HTTPClient.request(port: fixture.port, "GET", "/apps/reviews/reviews/about")
        #expect(about.text == "Reviews, served by Gust.\n")
    }

    @Test(.scratchDirectory) func aNewReleaseAnswersAndARollbackBringsTheOldOneBack() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try Self.pythonApp(work, version: "one")
        try work.commit("One")
        #expect(try work.push(to: fixture.remote).status == 0)
        #expect(try fixture.call("GET", "/version").text == "one\n")

        try Self.pythonApp(work, version: "two")
        try work.commit("Two")
        #expect(try work.push(to: fixture.remote).status == 0)
        #expect(try fixture.call("GET", "/version").text == "two\n")

        let rollback = try GustBinaries.gust(fixture.home, ["rollback", "cats"])
        #expect(rollback.status == 0, "\(rollback.output)")
        #expect(rollback.stdout.contains("v3 is live"))
        #expect(try fixture.call("GET", "/version").text == "one\n")
        let releases = try fixture.releases()
        #expect(releases.first?["version"] as? Int == 3)
        #expect(releases.first?["status"] as? String == "live")
        #expect(releases.first?["rollbackOf"] as? Int == 1)
        // Only the live release and the one it replaced stay unpacked; v1 unpacks again when needed.
        let unpacked = try FileManager.default.contentsOfDirectory(atPath: fixture.home.releases.appendingPathComponent("cats").path)
            .filter { !$0.hasPrefix(".") }  // what is being deleted was renamed out of the way first
        #expect(Set(unpacked) == ["v2", "v3"], "\(unpacked)")
        #expect(try GustBinaries.gust(fixture.home, ["rollback", "cats", "v1"]).status == 0)
        #expect(try fixture.call("GET", "/version").text == "one\n")

        let missing = try GustBinaries.gust(fixture.home, ["rollback", "cats", "v9"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("no release v9"))
    }

    @Test(.scratchDirectory) func noRequestFailsDuringAPushAndARollback() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try Self.pythonApp(work, version: "one")
        try work.commit("One")
        #expect(try work.push(to: fixture.remote).status == 0)

        let stop = Atomic<Bool>(false)
        let outcomes = Mutex<[Int]>([])
        let port = fixture.port
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            for _ in 0..<20_000 where !stop.load(ordering: .relaxed) {
                let status = (try? HTTPClient.request(port: port, "POST", "/apps/cats/_/functions/hello", body: "{}").status) ?? -1
                outcomes.withLock { $0.append(status) }
            }
            done.signal()
        }
        try Self.pythonApp(work, version: "two")
        try work.commit("Two")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
        let rollback = try GustBinaries.gust(fixture.home, ["rollback", "cats"])
        #expect(rollback.status == 0, "\(rollback.output)")
        Thread.sleep(forTimeInterval: 0.3)
        stop.store(true, ordering: .relaxed)
        #expect(done.wait(timeout: .now() + 60) == .success)

        let statuses = outcomes.withLock { $0 }
        #expect(statuses.count > 20, "the client kept calling during the switches")
        #expect(statuses.allSatisfy { $0 == 200 }, "failed: \(statuses.filter { $0 != 200 }.prefix(10))")
    }

    @Test(.scratchDirectory) func aReleaseThatCannotStartIsRejectedAndTheOldOneKeepsServing() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try Self.pythonApp(work, version: "one")
        try work.commit("One")
        #expect(try work.push(to: fixture.remote).status == 0)

        try work.write("__init__.py", "import gust\n\nraise ValueError('broken at import')\n")
        try work.commit("Broken")
        let push = try work.push(to: fixture.remote)
        #expect(push.status != 0)
        #expect(push.stderr.contains("remote:        ValueError: broken at import"), "\(push.stderr)")
        #expect(push.stderr.contains("keeps serving v1"))
        #expect(try fixture.call("GET", "/version").text == "one\n")
        let releases = try fixture.releases()
        #expect(releases.first?["status"] as? String == "failed")
        #expect(releases.last?["status"] as? String == "live")
    }

    /// Unsandboxed instances outlive a SIGKILLed gustd, and the next gustd stops them (sandboxed ones die
    /// with gustd: HardeningProcessTests.aSIGKILLedGustdTakesItsSandboxedInstancesWithIt).
    @Test(.scratchDirectory) func gustdKilledAndStartedAgainServesTheSameReleases() throws {
        let fixture = try PushFixture(gustdArguments: ["--sandbox", "none"])
        let work = try fixture.workspace("py")
        try Self.pythonApp(work, version: "one")
        try work.commit("One")
        #expect(try work.push(to: fixture.remote).status == 0)
        #expect(try fixture.call("GET", "/version").text == "one\n")
        let gustd = try #require(fixture.gustd)
        let before = GustdProcess.recordedInstancePIDs(of: fixture.home)
        #expect(before.count == 1)

        gustd.kill9()
        #expect(before.allSatisfy(GustdProcess.isAlive), "a SIGKILLed gustd leaves its instances behind")
        try gustd.start()
        for pid in before {
            #expect(!GustdProcess.isAlive(pid), "instance \(pid) of the killed gustd was stopped")
        }
        #expect(try fixture.call("GET", "/version").text == "one\n")
        #expect(try fixture.call("GET", "/_/health").json?["release"] as? String == "v1")
    }

    @Test(.scratchDirectory) func aCrashGives502AndASleeperGives504() throws {
        let fixture = try PushFixture(gustdArguments: ["--function-timeout", "2"])
        let work = try fixture.workspace("py")
        try Self.pythonApp(work, version: "one")
        try work.commit("One")
        #expect(try work.push(to: fixture.remote).status == 0)

        let crash = try fixture.call("POST", "/_/functions/crash", body: "{}")
        #expect(crash.status == 502)
        #expect(crash.json?["code"] as? Int == 502)
        #expect(try fixture.call("POST", "/_/functions/hello", body: "{}").status == 200)
        // The instance is a fork of the zygote, which reaps it and reports its status: the app's log says it.
        var said = ""
        for _ in 0..<50 where !said.contains("exited with code 3") {
            said = try GustBinaries.gust(fixture.home, ["logs", "cats", "-n", "50"]).stdout
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(said.contains("exited with code 3"), "\(said)")

        let slow = try fixture.call("POST", "/_/functions/sleep", body: #"{"seconds": 10}"#)
        #expect(slow.status == 504)
        #expect(try fixture.call("POST", "/_/functions/hello", body: "{}").status == 200)
    }

    @Test(.scratchDirectory) func aPushWithoutGustdIsRejectedWithHowToStartIt() throws {
        let fixture = try PushFixture(startGustd: false)
        let work = try fixture.workspace("py", copying: PushFixture.example("python-cats"))
        try work.commit("Cats")
        let push = try work.push(to: fixture.remote)
        #expect(push.status != 0)
        #expect(push.stderr.contains("gustd is not running"))
        #expect(push.stderr.contains("gustd --home"))
        #expect(try fixture.releases().isEmpty)
    }
}
