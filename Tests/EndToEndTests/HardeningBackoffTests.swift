import Foundation
import GustCore
import GustTesting
import Testing

/// A release that cannot start is started again with backoff, not on every
/// request, and says so (issue 10, item 7).
@Suite(.timeLimit(.minutes(20)))
struct HardeningBackoffTests {
    @Test(.scratchDirectory) func aReleaseThatCannotStartIsRetriedWithBackoffAndSaysItIsCrashing() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try work.write("__init__.py", """
            import gust

            print('gust-test: start', flush=True)

            @gust.op('hello')
            def hello():
                return 'hello'

            """)
        try work.commit("App")
        #expect(try work.push(to: fixture.remote).status == 0)
        #expect(try fixture.call("POST", "/_/functions/hello", body: "{}").status == 200)

        // The live release breaks under gustd's feet: its entry now exits at import.
        let release = fixture.home.release(try AppName("cats"), version: 1)
        try? FileManager.default.removeItem(at: release.appendingPathComponent("__pycache__"))
        try """
            print('gust-test: start', flush=True)
            raise SystemExit('the release is broken')

            """.write(to: release.appendingPathComponent("__init__.py"), atomically: true, encoding: .utf8)
        // Starts are counted in the app's log (a sandboxed app writes no file the test sees).
        let startsBefore = AppLogMarks.wait(fixture.home, app: "cats", prefix: "gust-test: ") { !$0.isEmpty }.count
        let instance = try HardeningProcessTests.onlyInstance(of: fixture)
        // Its zygote imported the release before it broke, and a fork of it would not read it
        // again: it goes first (gustd forgets it once it has seen it exit), then the instance.
        // Sandboxed too: the zygote runs in the app's sandbox and forks the instances there.
        let zygotes = GustdProcess.recordedZygotePIDs(of: fixture.home)
        #expect(zygotes.count == 1, "a Python release's instances are forked from its zygote")
        zygotes.forEach { kill($0, SIGKILL) }
        for _ in 0..<100 where !GustdProcess.recordedZygotePIDs(of: fixture.home).isEmpty { usleep(50_000) }
        kill(instance, SIGKILL)
        for _ in 0..<100 {  // until gustd has seen it die, 5 s at most
            guard try fixture.call("GET", "/_/health").json?["state"] as? String == "running" else { break }
            usleep(50_000)
        }

        // 30 requests over about 3 s: the first start fails, then 1 s, then 2 s of backoff.
        var statuses: [Int] = []
        var retryAfter: [String] = []
        let began = Date()
        for _ in 0..<30 {
            let answer = try fixture.call("POST", "/_/functions/hello", body: "{}")
            statuses.append(answer.status)
            if let value = answer.headers["retry-after"] { retryAfter.append(value) }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let elapsed = Date().timeIntervalSince(began)
        let started = AppLogMarks.settled(fixture.home, app: "cats", prefix: "gust-test: ").count - startsBefore
        #expect(started >= 1 && started <= 4, "\(started) starts in \(elapsed) s")
        #expect(statuses.allSatisfy { $0 == 503 }, "\(statuses)")
        #expect(retryAfter.count >= 20, "quick 503s carry Retry-After: \(retryAfter)")
        #expect(retryAfter.allSatisfy { Int($0).map { (1...60).contains($0) } ?? false }, "\(retryAfter)")
        let refused = try fixture.call("POST", "/_/functions/hello", body: "{}")
        #expect(refused.json?["code"] as? Int == 503)
        let refusal = refused.json?["error"] as? String ?? ""
        #expect(refusal.contains("crashing"), "\(refused.text)")

        let health = try fixture.call("GET", "/_/health")
        #expect(health.json?["state"] as? String == "crashing", "\(health.text)")
        let why = health.json?["error"] as? String ?? ""
        #expect(why.contains("while starting"), "\(health.text)")

        let releases = try GustBinaries.gust(fixture.home, ["releases", "cats"])
        #expect(releases.stdout.contains("crashing"), "\(releases.output)")
        let json = try fixture.releases()
        #expect(json.first?["state"] as? String == "crashing", "\(json)")

        let log = try GustBinaries.gust(fixture.home, ["logs", "cats", "-n", "100"]).stdout
        #expect(log.contains("the release is broken"), "the app's log has the instance's output")
        #expect(log.contains("next start in"), "and why it is not started again at once: \(log)")
        let gustd = try #require(fixture.gustd)
        #expect(gustd.logText.contains("next start in"), "\(gustd.logText)")

        // Mended, it starts at the next try (the backoff is at most a few seconds by now) and says so.
        try? FileManager.default.removeItem(at: release.appendingPathComponent("__pycache__"))
        try "import gust\n\n@gust.op('hello')\ndef hello():\n    return 'mended'\n"
            .write(to: release.appendingPathComponent("__init__.py"), atomically: true, encoding: .utf8)
        var mended: HTTPResult?
        for _ in 0..<40 {  // 20 s
            let answer = try fixture.call("POST", "/_/functions/hello", body: "{}")
            if answer.status == 200 { mended = answer; break }
            Thread.sleep(forTimeInterval: 0.5)
        }
        #expect(mended?.text == #""mended""#)
        #expect(try fixture.call("GET", "/_/health").json?["state"] as? String == "running")
        #expect(try fixture.releases().first?["state"] as? String == "running")
    }
}
