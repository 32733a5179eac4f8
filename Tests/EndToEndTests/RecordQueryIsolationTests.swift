import Foundation
import GustCore
import GustTesting
import Synchronization
import Testing

/// One app's slow record queries (an order over every record, far into it with `offset`),
/// sent many at once, hold up neither another app's records nor its own writes: each app
/// runs one query at a time on threads kept for queries, through a connection of its own.
@Suite(.timeLimit(.minutes(10)))
struct RecordQueryIsolationTests {
    static let app = """
        import gust

        @gust.op('ping')
        def ping():
            return 'pong'
        """

    @Test(.scratchDirectory) func oneAppsSlowQueriesHoldUpNeitherAnotherAppsRecordsNorItsOwnWrites() throws {
        let fixture = try PushFixture()
        let push = try fixture.pushPython(Self.app)
        #expect(push.status == 0, "\(push.output)")
        #expect(try GustBinaries.gust(fixture.home, ["apps", "create", "big"]).status == 0)
        func token(_ app: String) throws -> [String: String] {
            let created = try GustBinaries.gust(fixture.home, ["tokens", "create", app])
            #expect(created.status == 0, "\(created.output)")
            return ["X-Auth-Token": created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)]
        }
        let (cats, big) = (try token("cats"), try token("big"))

        // big's store, filled before gustd first opens it: 400,000 records.
        let url = fixture.home.data(try AppName("big")).appendingPathComponent("records.sqlite")
        _ = try RecordStore(url: url)
        try Database(url: url).execute("""
            WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 400000)
            INSERT INTO records SELECT 'thing', printf('%016d', i), json_object('n', i, 'pad', printf('%.50c', 'x')),
                '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z' FROM c
            """)
        let slow = "/apps/big/_/records/thing?order=-n&offset=399950"

        func timed(_ method: String, _ path: String, _ headers: [String: String], body: String? = nil, expect status: Int) throws -> Double {
            let began = ContinuousClock.now
            let answer = try HTTPClient.request(port: fixture.port, method, path, headers: headers, body: body, timeout: 60)
            #expect(answer.status == status, "\(method) \(path): \(answer.status) \(answer.text.prefix(300))")
            return (ContinuousClock.now - began).seconds
        }
        // One slow query alone: what holding a thread for one costs here.
        let alone = try timed("GET", slow, big, expect: 200)
        try #require(alone > 0.3, "the query is too quick here (\(alone) s) to show anything held up")

        // Four at a time, again and again, while cats reads and writes, and big writes too.
        let stop = Atomic(false)
        let flood = DispatchGroup()
        let floodAnswers = Mutex<[Int]>([])
        for _ in 0..<4 {
            DispatchQueue.global().async(group: flood) {
                while !stop.load(ordering: .relaxed) {
                    let status = (try? HTTPClient.request(port: fixture.port, "GET", slow, headers: big, timeout: 60))?.status ?? -1
                    floodAnswers.withLock { $0.append(status) }
                }
            }
        }
        defer {
            stop.store(true, ordering: .relaxed)
            _ = flood.wait(timeout: .now() + 60)
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while floodAnswers.withLock({ $0.count }) < 1 && ContinuousClock.now < deadline { usleep(10_000) }

        var slowest = 0.0
        for round in 0..<5 {
            slowest = max(slowest, try timed("POST", "/apps/cats/_/records/cat", cats, body: #"{"round": \#(round)}"#, expect: 201))
            slowest = max(slowest, try timed("GET", "/apps/cats/_/records/cat?order=-round", cats, expect: 200))
            slowest = max(slowest, try timed("POST", "/apps/big/_/records/note", big, body: #"{"round": \#(round)}"#, expect: 201))
        }
        stop.store(true, ordering: .relaxed)
        #expect(flood.wait(timeout: .now() + 60) == .success)
        #expect(slowest < alone / 2, "a write or a small query took \(slowest) s while big's queries (\(alone) s each) ran")
        let statuses = floodAnswers.withLock { $0 }
        #expect(statuses.count >= 2 && statuses.allSatisfy { $0 == 200 }, "\(statuses)")
    }
}
