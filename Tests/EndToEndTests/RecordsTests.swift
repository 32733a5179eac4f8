import Foundation
import GustCore
import GustTesting
import Synchronization
import Testing

/// The record store over HTTP with hooks that run in the pushed app, and
/// `gust.records` from inside functions, against a real gustd.
@Suite(.timeLimit(.minutes(20)))
struct RecordsTests {
    static let pythonCats = """
        import gust

        @gust.before_save('cat')
        def validate_cat_name(record, original):
            if not record.get('name'):
                raise gust.Error('Missing cat name', code=400)
            record['name'] = record['name'].strip()
            return record

        @gust.after_save('cat')
        def announce(record, original):
            if record.get('name') == 'Grumpy':
                raise RuntimeError('grumpy cats break the after hook')

        @gust.op('adopt')
        def adopt(name):
            # A write from an op to a type with a before-hook: the hook runs in this instance while the op waits.
            return gust.records.save('cat', {'name': name})

        @gust.op('count')
        def count(name):
            return len(gust.records.find('cat', name=name))

        """

    func token(_ fixture: PushFixture, _ app: String = "cats") throws -> String {
        let created = try GustBinaries.gust(fixture.home, ["tokens", "create", app])
        #expect(created.status == 0, "\(created.output)")
        return created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test(.scratchDirectory) func pythonHooksGuardTheStoreAndOpsUseGustRecords() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.pythonCats)
        try work.commit("Cats")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
        let auth = ["X-Auth-Token": try token(fixture)]

        let empty = try fixture.call("POST", "/_/records/cat", body: "{}", headers: auth)
        #expect(empty.status == 400)
        #expect(empty.json?["error"] as? String == "Missing cat name")
        #expect(try fixture.call("GET", "/_/records/cat", headers: auth).json?["records"] as? [Any] == nil
            || (try fixture.call("GET", "/_/records/cat", headers: auth).json?["records"] as? [Any])?.isEmpty == true)

        let tom = try fixture.call("POST", "/_/records/cat", body: #"{"name": "  Tom  ", "age": 3}"#, headers: auth)
        #expect(tom.status == 201, "\(tom.text)")
        let id = try #require(tom.json?["_id"] as? String)
        let stored = try fixture.call("GET", "/_/records/cat/\(id)", headers: auth)
        #expect(stored.json?["name"] as? String == "Tom", "the hook's change is what is stored")
        #expect(stored.json?["_created_at"] is String)

        let updated = try fixture.call("PUT", "/_/records/cat/\(id)", body: #"{"age": 4}"#, headers: auth)
        #expect(updated.json?["age"] as? Int == 4)
        #expect(updated.json?["name"] as? String == "Tom", "an update merges fields")
        let found = try fixture.call("GET", #"/_/records/cat?where=%7B%22age%22%3A4%7D&order=-age&limit=5"#, headers: auth)
        #expect((found.json?["records"] as? [[String: Any]])?.count == 1)
        #expect(try fixture.call("GET", "/_/records/cat?where=nope", headers: auth).status == 400)
        // A pair with no name: splitting "=" gave no halves, and reading the first trapped gustd.
        for query in ["=", "=5", "&=&", "limit"] {
            let odd = try fixture.call("GET", "/_/records/cat?\(query)", headers: auth)
            #expect(odd.status == 400 && odd.json?["code"] as? Int == 400, "?\(query): \(odd.status) \(odd.text)")
        }
        #expect(try fixture.call("GET", "/_/records/cat/missing", headers: auth).status == 404)
        #expect(try fixture.call("GET", "/_/records/9cat", headers: auth).status == 400)

        // A failing after-hook leaves the record, and its failure is in the app's log.
        let grumpy = try fixture.call("POST", "/_/records/cat", body: #"{"name": "Grumpy"}"#, headers: auth)
        #expect(grumpy.status == 201)
        let grumpyID = try #require(grumpy.json?["_id"] as? String)
        #expect(try fixture.call("GET", "/_/records/cat/\(grumpyID)", headers: auth).status == 200)
        let logs = try GustBinaries.gust(fixture.home, ["logs", "cats", "-n", "100"]).stdout
        #expect(logs.contains("grumpy cats break the after hook"), "\(logs)")
        #expect(logs.contains("after_save cat failed"), "\(logs)")
        let hookLogs = try GustBinaries.gust(fixture.home, ["logs", "cats", "--function", "after_save cat"]).stdout
        #expect(hookLogs.contains("grumpy cats break the after hook"), "the hook's own output is tagged with it: \(hookLogs)")
        #expect(hookLogs.contains("after_save cat failed"), "and so is gustd's note of its failure")

        // The re-entrant case: an op saves a cat, whose before-hook runs in the same instance.
        let adopted = try fixture.call("POST", "/_/functions/adopt", body: #"{"name": " Felix "}"#)
        #expect(adopted.status == 200, "\(adopted.text)")
        #expect(adopted.json?["name"] as? String == "Felix")
        let rejected = try fixture.call("POST", "/_/functions/adopt", body: #"{"name": ""}"#)
        #expect(rejected.status == 400)
        #expect(rejected.json?["error"] as? String == "Missing cat name")
        #expect(try fixture.call("POST", "/_/functions/count", body: #"{"name": "Felix"}"#).text == "1")

        #expect(try fixture.call("DELETE", "/_/records/cat/\(id)", headers: auth).status == 200)
        #expect(try fixture.call("GET", "/_/records/cat/\(id)", headers: auth).status == 404)
    }

    @Test(.scratchDirectory) func withoutAValidTokenEveryVerbIs401AndNothingHappens() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py", copying: PushFixture.example("python-cats"))
        try work.commit("Cats")
        #expect(try work.push(to: fixture.remote).status == 0)
        let secret = try token(fixture)
        let good = try fixture.call("POST", "/_/records/cat", body: #"{"name": "Tom"}"#, headers: ["X-Auth-Token": secret])
        let id = try #require(good.json?["_id"] as? String)

        for headers in [[:], ["X-Auth-Token": "gust_not-a-token"]] {
            for (method, path, body) in [
                ("POST", "/_/records/cat", #"{"name": "Intruder"}"#), ("GET", "/_/records/cat", nil),
                ("GET", "/_/records/cat/\(id)", nil), ("PUT", "/_/records/cat/\(id)", #"{"name": "Owned"}"#),
                ("DELETE", "/_/records/cat/\(id)", nil),
            ] {
                let answer = try fixture.call(method, path, body: body, headers: headers)
                #expect(answer.status == 401, "\(method) \(path)")
                #expect(answer.json?["code"] as? Int == 401)
            }
        }
        let all = try fixture.call("GET", "/_/records/cat", headers: ["X-Auth-Token": secret])
        let names = (all.json?["records"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        #expect(names == ["Tom"], "nothing was written or deleted")

        #expect(try GustBinaries.gust(fixture.home, ["tokens", "revoke", "cats", "1"]).status == 0)
        #expect(try fixture.call("GET", "/_/records/cat", headers: ["X-Auth-Token": secret]).status == 401)
    }

    @Test(.scratchDirectory) func nodeReviewsAverageStarsAndTruncateComments() throws {
        let fixture = try PushFixture(app: "reviews")
        let work = try fixture.workspace("node", copying: PushFixture.example("node-reviews"))
        try work.commit("Reviews")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
        let auth = ["X-Auth-Token": try token(fixture, "reviews")]

        for stars in [3, 4, 5] {
            let review = try fixture.call("POST", "/_/records/Review", body: #"{"movie": "Alien", "stars": \#(stars), "comment": "ok"}"#, headers: auth)
            #expect(review.status == 201, "\(review.text)")
        }
        let long = String(repeating: "a", count: 200)
        let truncated = try fixture.call("POST", "/_/records/Review", body: #"{"movie": "Heat", "stars": 1, "comment": "\#(long)"}"#, headers: auth)
        let id = try #require(truncated.json?["_id"] as? String)
        let stored = try fixture.call("GET", "/_/records/Review/\(id)", headers: auth)
        #expect((stored.json?["comment"] as? String)?.count == 140)

        let missing = try fixture.call("POST", "/_/records/Review", body: #"{"movie": "Alien", "stars": 1}"#, headers: auth)
        #expect(missing.status == 400)
        #expect(missing.json?["code"] as? Int == 123)
        #expect(missing.json?["error"] as? String == "No comment provided!")

        let average = try fixture.call("POST", "/_/functions/averageStars", body: #"{"movie": "Alien"}"#)
        #expect(average.status == 200, "\(average.text)")
        #expect(average.json?["reviews"] as? Int == 3)
        #expect(average.json?["average"] as? Double == 4)

        // An op that saves a Review: the beforeSave hook runs in the same instance, without a hang.
        let added = try fixture.call("POST", "/_/functions/addReview", body: #"{"movie": "Heat", "stars": 5, "comment": "\#(long)"}"#)
        #expect(added.status == 200, "\(added.text)")
        #expect((added.json?["comment"] as? String)?.count == 140)
        let refused = try fixture.call("POST", "/_/functions/addReview", body: #"{"movie": "Heat", "stars": 5}"#)
        #expect(refused.json?["code"] as? Int == 123)
    }

    @Test(.scratchDirectory) func hooksPastTheirLimitRejectTheWriteOrAreCutShort() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try work.write("__init__.py", """
            import time
            import gust

            @gust.before_save('slow')
            def slow(record, original):
                time.sleep(float(record.get('sleep', 0)))
                return record

            @gust.after_save('late')
            def late(record, original):
                time.sleep(5)

            """)
        try work.commit("Slow hooks")
        #expect(try work.push(to: fixture.remote).status == 0)
        let limits = try GustBinaries.gust(
            fixture.home, ["config", "set", "cats", "GUST_BEFORE_HOOK_TIMEOUT=1s", "GUST_AFTER_HOOK_TIMEOUT=500ms"]
        )
        #expect(limits.status == 0, "\(limits.output)")
        let auth = ["X-Auth-Token": try token(fixture)]

        let tooSlow = try fixture.call("POST", "/_/records/slow", body: #"{"sleep": 4}"#, headers: auth)
        #expect(tooSlow.status == 504, "\(tooSlow.text)")
        let none = try fixture.call("GET", "/_/records/slow", headers: auth)
        #expect((none.json?["records"] as? [Any])?.isEmpty == true, "a before-hook past its limit stores nothing: \(none.text)")
        let quick = try fixture.call("POST", "/_/records/slow", body: #"{"sleep": 0}"#, headers: auth)
        #expect(quick.status == 201, "the next write gets a fresh instance: \(quick.text)")

        let started = Date()
        let late = try fixture.call("POST", "/_/records/late", body: #"{"name": "Tom"}"#, headers: auth)
        #expect(late.status == 201, "\(late.text)")
        #expect(Date().timeIntervalSince(started) < 4, "the after-hook was cut at its limit, not waited for")
        let id = try #require(late.json?["_id"] as? String)
        #expect(try fixture.call("GET", "/_/records/late/\(id)", headers: auth).status == 200, "the write stands")
    }

    /// A hook's answer is the app's code: one far past what a record may be is refused before
    /// gustd parses it, and a failing hook's message reaches the writer cut to a few KiB.
    @Test(.scratchDirectory) func aHooksOversizedAnswerIsRefusedUnreadAndItsErrorCut() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try work.write("__init__.py", """
            import gust

            @gust.before_save('big')
            def big(record, original):
                return {'pad': 'x' * (3 * 1024 * 1024)}

            @gust.before_save('loud')
            def loud(record, original):
                raise gust.Error('no ' * 300000, code=400)

            """)
        try work.commit("Big hooks")
        #expect(try work.push(to: fixture.remote).status == 0)
        let auth = ["X-Auth-Token": try token(fixture)]

        let big = try fixture.call("POST", "/_/records/big", body: #"{"name": "Tom"}"#, headers: auth)
        #expect(big.status == 502 && big.text.contains("more than a hook's answer may be"), "\(big.status) \(big.text.prefix(300))")
        let loud = try fixture.call("POST", "/_/records/loud", body: #"{"name": "Tom"}"#, headers: auth)
        #expect(loud.status == 400 && loud.text.utf8.count < 8192, "\(loud.status) \(loud.text.utf8.count) bytes")
        let none = try fixture.call("GET", "/_/records/big", headers: auth)
        #expect((none.json?["records"] as? [Any])?.isEmpty == true, "\(none.text.prefix(300))")
    }

    @Test(.scratchDirectory) func anOutsideWriteAndAFunctionsOwnWriteDoNotWaitForEachOther() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try work.write("__init__.py", """
            import time
            import gust

            @gust.before_save('cat')
            def checked(record, original):
                record['checked'] = True
                return record

            @gust.op('slow_adopt')
            def slow_adopt(name):
                time.sleep(1)
                return gust.records.save('cat', {'name': name})

            """)
        try work.commit("Slow adopt")
        #expect(try work.push(to: fixture.remote).status == 0)
        let auth = ["X-Auth-Token": try token(fixture)]

        // The op holds the instance while an outside write to the same type arrives; then the op writes too.
        let op = Mutex<HTTPResult?>(nil)
        let done = DispatchSemaphore(value: 0)
        let port = fixture.port
        DispatchQueue.global().async {
            let answer = try? HTTPClient.request(port: port, "POST", "/apps/cats/_/functions/slow_adopt", body: #"{"name": "Felix"}"#)
            op.withLock { $0 = answer }
            done.signal()
        }
        usleep(300_000)
        let outside = try fixture.call("POST", "/_/records/cat", body: #"{"name": "Tom"}"#, headers: auth)
        #expect(done.wait(timeout: .now() + 30) == .success)
        let adopted = op.withLock { $0 }
        #expect(outside.status == 201, "the outside write's hook ran once the op was done: \(outside.text)")
        #expect(outside.json?["checked"] as? Bool == true)
        #expect(adopted?.status == 200, "\(adopted?.text ?? "no answer")")
        #expect(adopted?.json?["checked"] as? Bool == true)
    }
}

extension RecordsTests {
    /// A write from an instance of a release that is no longer live (a call that was in flight at
    /// a switch, draining) runs the hooks of its own release's code, in that instance: never the
    /// live release's, whose functions that code may not have. Here v1 has no hook and v2 a
    /// before-save: v1's write goes through as v1 wrote it, and v2's is stamped.
    @Test(.scratchDirectory) func aDrainingReleasesWriteRunsItsOwnHooksNotTheLiveOnes() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        let op = """
            import time
            import gust

            @gust.op('save_when_told')
            def save_when_told(name):
                # Waits (at most 60 s) for the test's signal record, written once v2 is live.
                deadline = time.time() + 60
                while not gust.records.find('signal') and time.time() < deadline:
                    time.sleep(0.05)
                return gust.records.save('cat', {'name': name})

            """
        try work.write("__init__.py", op)
        try work.commit("v1: no hooks")
        #expect(try work.push(to: fixture.remote).status == 0)
        let auth = ["X-Auth-Token": try token(fixture)]

        let port = fixture.port
        let inFlight = BackgroundCall {
            try HTTPClient.request(port: port, "POST", "/apps/cats/_/functions/save_when_told", body: #"{"name": "Felix"}"#)
        }
        usleep(300_000)
        try work.write("__init__.py", op + """
            @gust.before_save('cat')
            def stamped(record, original):
                record['stamp'] = 'v2'
                return record

            """)
        try work.commit("v2: a before-save hook")
        let pushed = try work.push(to: fixture.remote)
        #expect(pushed.status == 0 && pushed.output.contains("v2 is live"), "\(pushed.output)")
        #expect(try fixture.call("POST", "/_/records/signal", body: "{}", headers: auth).status == 201)

        let old = try #require(try inFlight.wait(seconds: 60)?.get())
        #expect(old.status == 200, "v1's write, with v1's hooks (none): \(old.text)")
        #expect(old.json?["name"] as? String == "Felix" && old.json?["stamp"] == nil, "\(old.text)")
        let new = try fixture.call("POST", "/_/functions/save_when_told", body: #"{"name": "Tom"}"#)
        #expect(new.status == 200 && new.json?["stamp"] as? String == "v2", "v2's write runs v2's hook: \(new.text)")
    }
}
