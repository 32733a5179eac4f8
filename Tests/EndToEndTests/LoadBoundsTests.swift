import Foundation
import GustCore
import GustTesting
import Testing

/// Issue 10, item 8: what one app sends or declares is bounded (record size,
/// page size, manifest size, schedule count), with a clear error, and a big
/// read of one app does not hold up the calls of another. Real gustd, real pushes.
@Suite(.timeLimit(.minutes(20)))
struct LoadBoundsTests {
    static let plainApp = """
        import gust

        @gust.op('ping')
        def ping():
            return 'pong'

        """

    func push(_ fixture: PushFixture, app: String? = nil, source: String) throws -> CommandResult {
        let work = try fixture.workspace(app ?? fixture.app)
        try work.write("__init__.py", source)
        try work.commit("App")
        let remote = try app.map { fixture.home.repository(try AppName($0)).path } ?? fixture.remote
        return try work.push(to: remote)
    }

    func token(_ fixture: PushFixture, _ app: String) throws -> [String: String] {
        let created = try GustBinaries.gust(fixture.home, ["tokens", "create", app])
        #expect(created.status == 0, "\(created.output)")
        return ["X-Auth-Token": created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)]
    }

    @Test(.scratchDirectory) func aRecordOverOneMebibyteIs413AndNothingIsStored() throws {
        let fixture = try PushFixture()
        let pushed = try push(fixture, source: Self.plainApp)
        #expect(pushed.status == 0, "\(pushed.output)")
        let auth = try token(fixture, "cats")

        let big = #"{"blob": "\#(String(repeating: "a", count: 1_100_000))"}"#
        let answer = try fixture.call("POST", "/_/records/cat", body: big, headers: auth)
        #expect(answer.status == 413, "\(answer.text.prefix(300))")
        #expect(answer.json?["code"] as? Int == 413)
        #expect((answer.json?["error"] as? String)?.contains("1 MiB") == true, "\(answer.text.prefix(300))")

        // Under the limit, and then an update whose merged record would pass it.
        let half = String(repeating: "b", count: 600_000)
        let small = try fixture.call("POST", "/_/records/cat", body: #"{"a": "\#(half)"}"#, headers: auth)
        #expect(small.status == 201)
        let id = try #require(small.json?["_id"] as? String)
        let merged = try fixture.call("PUT", "/_/records/cat/\(id)", body: #"{"b": "\#(half)"}"#, headers: auth)
        #expect(merged.status == 413, "\(merged.text.prefix(300))")

        let all = try fixture.call("GET", "/_/records/cat", headers: auth)
        let records = all.json?["records"] as? [[String: Any]]
        #expect(records?.count == 1, "only the small record is stored")
        #expect(records?.first?["b"] == nil, "the update that passed the limit changed nothing")
    }

    @Test(.scratchDirectory) func aLimitOverTheMaximumIs400() throws {
        let fixture = try PushFixture()
        #expect(try push(fixture, source: Self.plainApp).status == 0)
        let auth = try token(fixture, "cats")
        let answer = try fixture.call("GET", "/_/records/cat?limit=101", headers: auth)
        #expect(answer.status == 400, "\(answer.text)")
        #expect((answer.json?["error"] as? String)?.contains("1 to 100") == true, "\(answer.text)")
        #expect(try fixture.call("GET", "/_/records/cat?limit=100", headers: auth).status == 200)
    }

    /// Records stored before the limits existed (written here straight into
    /// the store): a page of them is cut at the byte budget, read off the
    /// event loops, and another app's calls stay fast meanwhile.
    @Test(.scratchDirectory) func aBigPageOfOneAppDoesNotHoldUpAnother() throws {
        let fixture = try PushFixture()
        #expect(try push(fixture, source: Self.plainApp).status == 0)
        #expect(try GustBinaries.gust(fixture.home, ["apps", "create", "dogs"]).status == 0)
        let dogs = try push(fixture, app: "dogs", source: Self.plainApp)
        #expect(dogs.status == 0, "\(dogs.output)")
        let auth = try token(fixture, "cats")

        let url = fixture.home.data(try AppName("cats")).appendingPathComponent("records.sqlite")
        _ = try RecordStore(url: url)  // the table
        let db = try Database(url: url)
        let blob = #"{"blob": "\#(String(repeating: "x", count: 5_000_000))"}"#
        try db.transaction {
            for index in 0..<30 {
                try db.run(
                    "INSERT INTO records (type, id, data, created_at, updated_at) VALUES ('blob', ?, ?, '2026-01-01', '2026-01-01')",
                    [.text("old\(index)"), .text(blob)]
                )
            }
        }

        let port = fixture.port
        let page = BackgroundCall { try HTTPClient.request(port: port, "GET", "/apps/cats/_/records/blob?limit=100", headers: auth, timeout: 60) }
        usleep(300_000)
        for _ in 0..<5 {
            let started = ContinuousClock.now
            let pong = try HTTPClient.request(port: port, "POST", "/apps/dogs/_/functions/ping", body: "{}", timeout: 20)
            let took = ContinuousClock.now - started
            #expect(pong.text == #""pong""#)
            #expect(took < .seconds(5), "a call to another app took \(took) while a big page was read")
        }
        let answer = try #require(page.wait(seconds: 60), "the page came").get()
        #expect(answer.status == 200)
        let records = answer.json?["records"] as? [[String: Any]] ?? []
        #expect((1..<30).contains(records.count), "the page is cut at its byte budget: \(records.count) records")
        #expect(answer.json?["more"] as? Bool == true)
        #expect(answer.json?["next_offset"] as? Int == records.count)
    }

    @Test(.scratchDirectory) func moreSchedulesThanTheLimitRejectThePush() throws {
        let fixture = try PushFixture()
        let source = """
            import gust

            for index in range(101):
                def tick():
                    pass
                tick.__name__ = f'tick{index}'
                gust.every('1h', tick)

            """
        let pushed = try push(fixture, source: source)
        #expect(pushed.status != 0, "\(pushed.output)")
        #expect(pushed.output.contains("declares 101 schedules; an app may have at most 100"), "\(pushed.output)")
        #expect(try fixture.call("GET", "/_/health").status == 503, "nothing went live")
    }

    @Test(.scratchDirectory) func aManifestOverOneMebibyteRejectsThePush() throws {
        let fixture = try PushFixture()
        let source = """
            import gust

            for index in range(20000):
                gust.op('an-op-with-a-rather-long-name-to-fill-the-manifest-quickly-%05d' % index)(lambda: None)

            """
        let pushed = try push(fixture, source: source)
        #expect(pushed.status != 0, "\(pushed.output)")
        #expect(pushed.output.contains("manifest is larger than 1 MiB"), "\(pushed.output)")
    }
}
