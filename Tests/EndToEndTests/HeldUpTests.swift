import Foundation
import GustCore
import GustTesting
import Synchronization
import Testing

/// What must keep holding while gustd is hardened: record input is checked, a
/// thousand concurrent writes all land, SIGKILL loses no acknowledged write, and a
/// flood of output stays within the log's bound.
@Suite(.timeLimit(.minutes(20)))
struct HeldUpTests {
    static let app = """
        import sys

        import gust

        @gust.op('shout')
        def shout(megabytes=1):
            line = 'x' * 1023
            for _ in range(megabytes * 1024):
                sys.stdout.write(line + '\\n')
            sys.stdout.flush()
            return megabytes
        """

    func deployed() throws -> (PushFixture, String) {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app)
        try work.commit("One")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
        let created = try GustBinaries.gust(fixture.home, ["tokens", "create", "cats"])
        #expect(created.status == 0, "\(created.output)")
        return (fixture, created.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func count(_ fixture: PushFixture) throws -> Int {
        let file = fixture.home.data(try AppName("cats")).appendingPathComponent("records.sqlite")
        guard FileManager.default.fileExists(atPath: file.path) else { return 0 }  // nothing was ever written
        let database = try Database(url: fixture.home.data(try AppName("cats")).appendingPathComponent("records.sqlite"))
        return try database.query("SELECT count(*) AS n FROM records").first?.int("n") ?? -1
    }

    @Test(.scratchDirectory) func recordInputIsCheckedAndBadInputStoresNothing() throws {
        let (fixture, token) = try deployed()
        let auth = ["X-Auth-Token": token]
        let bad: [(String, String, String?)] = [
            ("POST", "/_/records/1cat", #"{"name": "tom"}"#),
            ("POST", "/_/records/cat;drop", #"{"name": "tom"}"#),
            ("POST", "/_/records/cat", "[1, 2]"),
            ("POST", "/_/records/cat", "not json"),
            ("POST", "/_/records/cat", #""tom""#),
            ("GET", #"/_/records/cat?where=%5B1%5D"#, nil),
            ("GET", #"/_/records/cat?where=%7B%22age%22%3A%7B%22%24gt%22%3A1%7D%7D"#, nil),
            ("GET", "/_/records/cat?limit=0", nil),
            ("GET", "/_/records/cat?limit=abc", nil),
        ]
        for (method, path, body) in bad {
            let answer = try fixture.call(method, path, body: body, headers: auth)
            #expect(answer.status == 400, "\(method) \(path): \(answer.status) \(answer.text)")
            #expect(answer.json?["code"] as? Int == 400 && answer.json?["error"] is String, "\(answer.text)")
        }
        #expect(try fixture.call("GET", "/_/records/cat/..%2F..%2Fgust.sqlite", headers: auth).status == 404)
        #expect(try count(fixture) == 0)
    }

    @Test(.scratchDirectory) func aThousandConcurrentWritesAllLand() throws {
        let (fixture, token) = try deployed()
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 1000) { index in
            do {
                let answer = try fixture.call("POST", "/_/records/cat", body: #"{"n": \#(index)}"#, headers: ["X-Auth-Token": token])
                if answer.status != 201 { failures.withLock { $0.append("\(index): \(answer.status) \(answer.text)") } }
            } catch {
                failures.withLock { $0.append("\(index): \(error)") }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0.prefix(5) })")
        #expect(try count(fixture) == 1000)
    }

    @Test(.scratchDirectory) func sigkillDuringWritesLosesNoAcknowledgedWrite() throws {
        let (fixture, token) = try deployed()
        let gustd = try #require(fixture.gustd)
        let acknowledged = Mutex<[String]>([])
        let stop = Atomic(false)
        let writers = DispatchGroup()
        for writer in 0..<8 {
            DispatchQueue.global().async(group: writers) {
                var index = 0
                while !stop.load(ordering: .relaxed) && index < 2000 {
                    index += 1
                    guard let answer = try? HTTPClient.request(port: fixture.port, "POST", "/apps/cats/_/records/cat", headers: ["X-Auth-Token": token], body: #"{"w": \#(writer), "i": \#(index)}"#, timeout: 5),
                        answer.status == 201, let id = answer.json?["_id"] as? String
                    else { continue }
                    acknowledged.withLock { $0.append(id) }
                }
            }
        }
        // Let writes flow, then kill gustd in the middle of them.
        let deadline = Date().addingTimeInterval(20)
        while acknowledged.withLock({ $0.count }) < 200 && Date() < deadline { usleep(20_000) }
        gustd.kill9()
        stop.store(true, ordering: .relaxed)
        #expect(writers.wait(timeout: .now() + 30) == .success)
        let ids = acknowledged.withLock { $0 }
        #expect(ids.count >= 200)

        try gustd.start()
        let store = try RecordStore(home: fixture.home, app: try AppName("cats"))
        let missing = try ids.filter { try store.get("cat", id: $0) == nil }
        #expect(missing.isEmpty, "\(missing.count) of \(ids.count) acknowledged writes are gone")
        #expect(try fixture.call("GET", "/_/records/cat/\(ids[0])", headers: ["X-Auth-Token": token]).status == 200)
    }

    @Test(.scratchDirectory) func twoHundredMegabytesOfOutputStayWithinTheLogsBound() throws {
        let (fixture, _) = try deployed()
        for _ in 0..<4 {
            let answer = try HTTPClient.request(port: fixture.port, "POST", "/apps/cats/_/functions/shout", body: #"{"megabytes": 50}"#, timeout: 60)
            #expect(answer.status == 200, "\(answer.text)")
        }
        // Lines read after the answer are still being written: wait until the log stops growing.
        let logs = fixture.home.logs
        var size = -1
        for _ in 0..<100 {
            let now = Self.bytes(in: logs)
            if now == size { break }
            size = now
            usleep(200_000)
        }
        #expect(size > 0)
        #expect(size <= 3 * AppLog.defaultMaxBytes, "logs/ holds \(size) bytes after 200 MB of output")
        #expect(try fixture.call("GET", "/_/health").status == 200)
        let tail = try GustBinaries.gust(fixture.home, ["logs", "cats", "-n", "3"])
        #expect(tail.status == 0 && tail.stdout.contains("xxxx"), "\(tail.output.prefix(500))")
    }

    static func bytes(in directory: URL) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.reduce(0) { total, name in
            let size = (try? FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent(name).path)[.size] as? Int) ?? 0
            return total + size
        }
    }
}
