import Foundation
import GustCore
import GustTesting
import Testing

/// Bodies at the edges of what JSON and HTTP carry, through gustd and both
/// runtimes: too large (413), integers beyond 2^53 (exact), numbers beyond a
/// double (400, never `Infinity`), a handler header with CR or LF (500).
@Suite(.timeLimit(.minutes(20)))
struct JSONEdgeTests {
    static let python = """
        import gust

        @gust.op('echo')
        def echo(**arguments):
            return arguments

        @gust.op('infinite')
        def infinite():
            return float('inf')

        @gust.handler('echo', methods=['POST'])
        def echo_handler(request):
            return request.json()

        @gust.handler('split')
        def split(request):
            return gust.Response('x', headers={'X-Split': 'a\\r\\nSet-Cookie: evil=1'})

        @gust.before_save('big')
        def keep(record, original):
            record['seen'] = record.get('n')
            return record

        """

    static let node = """
        const gust = require('gust');
        gust.op('echo', (args) => args);
        gust.op('infinite', () => Infinity);

        """

    static let big = "12345678901234567"
    static let beyond = "9007199254740993"  // 2^53 + 1

    func push(_ fixture: PushFixture) throws {
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.python)
        try work.commit("Edges")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
    }

    @Test(.scratchDirectory) func aBodyOverTheLimitIsA413InJSON() throws {
        let fixture = try PushFixture()
        try push(fixture)
        let token = try GustBinaries.gust(fixture.home, ["tokens", "create", "cats"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let huge = String(repeating: "x", count: 10 * 1024 * 1024 + 1)
        for (path, headers) in [("/_/functions/echo", [:]), ("/echo", [:]), ("/_/records/big", ["X-Auth-Token": token])] {
            let answer = try fixture.call("POST", path, body: huge, headers: headers)
            #expect(answer.status == 413, "\(path): \(answer.status) \(answer.text.prefix(200))")
            #expect(answer.json?["code"] as? Int == 413, "\(path): \(answer.text.prefix(200))")
            #expect((answer.json?["error"] as? String)?.contains("larger than") == true, "\(path): \(answer.text.prefix(200))")
        }
        #expect(try fixture.call("POST", "/_/functions/echo", body: "{}").status == 200, "gustd keeps answering")
    }

    @Test(.scratchDirectory) func integersBeyond2To53StayExactThroughOpsAndRecords() throws {
        let fixture = try PushFixture()
        try push(fixture)
        let body = #"{"n": \#(Self.big), "m": \#(Self.beyond), "f": 1.5}"#
        let op = try fixture.call("POST", "/_/functions/echo", body: body)
        #expect(op.status == 200)
        #expect(op.text.contains(Self.big) && op.text.contains(Self.beyond), "\(op.text)")

        // Through a Node op: JSON.parse alone would round both.
        let nodePush = try fixture.pushNode(Self.node, to: "dogs")
        #expect(nodePush.status == 0, "\(nodePush.output)")
        let nodeOp = try HTTPClient.request(port: fixture.port, "POST", "/apps/dogs/_/functions/echo", body: body)
        #expect(nodeOp.status == 200)
        #expect(nodeOp.text.contains(Self.big) && nodeOp.text.contains(Self.beyond), "\(nodeOp.text)")

        // Through the record store and its before-hook, stored and read back.
        let token = try GustBinaries.gust(fixture.home, ["tokens", "create", "cats"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let auth = ["X-Auth-Token": token]
        let saved = try fixture.call("POST", "/_/records/big", body: body, headers: auth)
        #expect(saved.status == 201, "\(saved.text)")
        #expect(saved.text.contains(#""n":\#(Self.big)"#) && saved.text.contains(#""seen":\#(Self.big)"#), "\(saved.text)")
        let id = try #require(saved.json?["_id"] as? String)
        let read = try fixture.call("GET", "/_/records/big/\(id)", headers: auth)
        #expect(read.text.contains(#""m":\#(Self.beyond)"#) && read.text.contains(#""n":\#(Self.big)"#), "\(read.text)")
        let found = try fixture.call("GET", "/_/records/big?where=%7B%22n%22%3A\(Self.big)%7D", headers: auth)
        #expect(found.text.contains(#""n":\#(Self.big)"#), "\(found.text)")
        #expect((found.json?["records"] as? [Any])?.count == 1, "\(found.text)")
    }

    @Test(.scratchDirectory) func numbersBeyondADoubleAre400AndNeverInfinity() throws {
        let fixture = try PushFixture()
        try push(fixture)
        let token = try GustBinaries.gust(fixture.home, ["tokens", "create", "cats"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        for body in [#"{"n": 1e999999}"#, #"{"n": -1e400}"#, #"{"n": NaN}"#] {
            for (path, headers) in [("/_/functions/echo", [:]), ("/_/records/big", ["X-Auth-Token": token])] {
                let answer = try fixture.call("POST", path, body: body, headers: headers)
                #expect(answer.status == 400, "\(path) \(body): \(answer.status) \(answer.text)")
                #expect(!answer.text.contains("Infinity") && !answer.text.contains("NaN"), "\(answer.text)")
            }
        }
        let infinite = try fixture.call("POST", "/_/functions/infinite", body: "{}")
        #expect(infinite.status == 500)
        #expect(infinite.json?["error"] as? String == "op infinite returned NaN or an infinity, which JSON cannot carry", "\(infinite.text)")
    }

    @Test(.scratchDirectory) func aHandlerHeaderWithCRLFIsA500AndTheInstanceLives() throws {
        let fixture = try PushFixture()
        try push(fixture)
        let pids = GustdProcess.recordedInstancePIDs(of: fixture.home)
        let split = try fixture.call("GET", "/split")
        #expect(split.status == 500, "\(split.text)")
        #expect((split.json?["error"] as? String)?.contains("X-Split") == true, "\(split.text)")
        #expect(split.headers["set-cookie"] == nil)
        #expect(try fixture.call("POST", "/_/functions/echo", body: "{}").status == 200)
        #expect(GustdProcess.recordedInstancePIDs(of: fixture.home) == pids, "the same instance still serves")
        let logs = try GustBinaries.gust(fixture.home, ["logs", "cats", "-n", "50"]).stdout
        #expect(logs.contains("X-Split"), "\(logs)")
    }
}
