import Foundation
import GustCore
import GustTesting
import Synchronization
import Testing

/// What a hostile client sends gustd that no browser would: malformed HTTP
/// gets a 4xx and gustd keeps answering; path and Host tricks never reach an
/// app other than the one the request names.
@Suite(.timeLimit(.minutes(20)))
struct MalformedRequestTests {
    static func app(_ work: GitWorkspace, name: String) throws {
        try work.write("__init__.py", """
            import gust

            @gust.op('who')
            def who():
                return '\(name)'

            @gust.handler('who')
            def who_handler(request):
                return '\(name) ' + request.path

            """)
    }

    /// The answer to a raw exchange, or nil if gustd closed without one.
    func answer(_ fixture: PushFixture, _ request: String) throws -> HTTPResult? {
        let data = try HTTPClient.raw(port: fixture.port, Data(request.utf8))
        return try? HTTPClient.parse(data)
    }

    @Test(.scratchDirectory) func malformedHTTPGetsA4xxAndGustdKeepsAnswering() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try Self.app(work, name: "cats")
        try work.commit("Cats")
        #expect(try work.push(to: fixture.remote).status == 0)

        let hugeHeader = "GET /apps/cats/who HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 200_000))\r\n\r\n"
        let manyHeaders = "GET /apps/cats/who HTTP/1.1\r\nHost: x\r\n" + (0..<5000).map { "X-H\($0): v\r\n" }.joined() + "\r\n"
        let badLine = "GARBAGE\r\n\r\n"
        let badVersion = "GET /apps/cats/who HTTP/9.9\r\nHost: x\r\n\r\n"
        let spaceInTarget = "GET /apps/cats/who is\r\nHost: x\r\n\r\n"
        let smuggle = "POST /apps/cats/_/functions/who HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /apps/cats/who HTTP/1.1\r\nHost: x\r\n\r\n"
        let badChunk = "POST /apps/cats/_/functions/who HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n"
        let unknownMethod = "FOO /apps/cats/who HTTP/1.1\r\nHost: x\r\n\r\n"
        for (what, request) in [("huge header", hugeHeader), ("5,000 headers", manyHeaders), ("bad request line", badLine),
                                ("bad version", badVersion), ("space in target", spaceInTarget),
                                ("Content-Length with Transfer-Encoding", smuggle), ("bad chunk", badChunk),
                                ("unknown method", unknownMethod)] {
            let answered = try answer(fixture, request)
            let status = answered?.status
            #expect(status.map { (400..<500).contains($0) } == true, "\(what): \(status.map(String.init) ?? "closed without an answer")")
            // Every error gustd gives is JSON with its status, also one for bytes that are not HTTP.
            #expect(answered?.json?["code"] as? Int == status, "\(what): \(answered?.text ?? "")")
            #expect((answered?.json?["error"] as? String)?.isEmpty == false, "\(what): \(answered?.text ?? "")")
            #expect(answered?.headers["connection"] == "close", "\(what)")
            #expect(try fixture.call("POST", "/_/functions/who", body: "{}").text == "\"cats\"", "gustd answers after \(what)")
        }
    }

    /// A `CONNECT` is refused by gustd and never reaches an instance: Node's server destroys the
    /// socket one comes on, which gustd took for a broken instance and stopped, cutting every call
    /// in flight on it.
    @Test(.scratchDirectory) func aConnectIsRefusedAndStopsNoInstanceNorTheCallsOnIt() throws {
        let fixture = try PushFixture()
        let pushed = try fixture.pushNode("""
            const gust = require('gust');
            gust.handler('pid', () => String(process.pid));
            gust.handler('slow', async () => { await new Promise((r) => setTimeout(r, 3000)); return String(process.pid); });

            """, to: "dogs")
        try #require(pushed.status == 0, "\(pushed.output)")
        let pid = try HTTPClient.request(port: fixture.port, "GET", "/apps/dogs/pid").text
        let slow = Mutex<HTTPResult?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let answer = try? HTTPClient.request(port: fixture.port, "GET", "/apps/dogs/slow", timeout: 10)
            slow.withLock { $0 = answer }
            done.signal()
        }
        usleep(500_000)  // the slow call runs on the one instance
        for target in ["/apps/dogs/pid", "/apps/dogs/_/functions/x", "localhost:80"] {
            // NIO answers a CONNECT without a body, so the close ends it: at once, not at a timeout.
            let asked = ContinuousClock.now
            let refused = try answer(fixture, "CONNECT \(target) HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(refused?.status == 405, "\(target): \(refused.map { "\($0.status) \($0.text)" } ?? "no answer")")
            #expect(refused?.headers["allow"]?.contains("GET") == true, "\(target): \(refused?.headers ?? [:])")
            #expect(ContinuousClock.now - asked < .seconds(5), "\(target): the connection stayed open")
        }
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(slow.withLock { $0?.status } == 200, "the call in flight was cut: \(String(describing: slow.withLock { $0 }?.text))")
        #expect(try HTTPClient.request(port: fixture.port, "GET", "/apps/dogs/pid").text == pid, "the same instance answers")
    }

    /// A request naming its host twice, or with a Host that is not a name and a port, is a 400 (RFC
    /// 9112, 3.2), on both of the gateway's paths: a front that checks another reading of it (the last
    /// Host, or the name with its junk) would let through a request gustd routes elsewhere.
    @Test(.scratchDirectory) func aRequestNamingItsHostTwoWaysOrBadlyIsRefused() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try Self.app(work, name: "cats")
        try work.commit("Cats")
        #expect(try work.push(to: fixture.remote).status == 0)
        for target in ["/_/health", "/who"] {
            for host in ["Host: cats.localhost\r\nHost: dogs.localhost", "Host: cats.localhost:80:junk", "Host: :cats.localhost",
                         "Host: cats.localhost:8o", "Host: cats.localhost/x", "Host: cats.localhost@dogs",
                         "Host: [::1", "Host: cats.localhost:123456"] {
                let request = "GET \(target) HTTP/1.1\r\n\(host)\r\n\r\n"
                let answer = try answer(fixture, request)
                #expect(answer?.status == 400, "\(request.debugDescription): \(answer.map { "\($0.status) \($0.text)" } ?? "no answer")")
                #expect(answer?.json?["code"] as? Int == 400, "\(request.debugDescription)")
            }
        }
        for host in ["cats.localhost", "CATS.localhost:80", "cats.localhost.", "127.0.0.1:\(fixture.port)", "[::1]:80"] {
            let answer = try answer(fixture, "GET /apps/cats/who HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n")
            #expect(answer?.status != 400, "\(host): \(answer.map { "\($0.status) \($0.text)" } ?? "no answer")")
        }
    }

    @Test(.scratchDirectory) func pathAndHostTricksNeverReachAnotherApp() throws {
        let fixture = try PushFixture()
        let cats = try fixture.workspace("cats")
        try Self.app(cats, name: "cats")
        try cats.commit("Cats")
        #expect(try cats.push(to: fixture.remote).status == 0)
        #expect(try GustBinaries.gust(fixture.home, ["apps", "create", "dogs"]).status == 0)
        let dogs = try fixture.workspace("dogs")
        try Self.app(dogs, name: "dogs")
        try dogs.commit("Dogs")
        #expect(try dogs.push(to: fixture.home.repository(try AppName("dogs")).path).status == 0)
        let port = fixture.port

        // The host names the app; a path naming another stays a path of that app.
        let byHost = try HTTPClient.request(port: port, "GET", "/apps/dogs/who", host: "cats.localhost:\(port)")
        #expect(byHost.status == 404, "\(byHost.text)")
        #expect(!byHost.text.contains("dogs /"), "\(byHost.text)")
        let climb = try HTTPClient.request(port: port, "GET", "/../apps/dogs/../../who", host: "cats.localhost:\(port)")
        #expect(climb.text == "cats /who", "\(climb.text)")
        // Hosts that are not APP.DOMAIN name no app; the path prefix then decides.
        // (One that is not a name and a port, `dogs.localhost@cats.localhost`, is a 400: see above.)
        for host in ["evil", "cats.localhost.evil", "localhost", "cats.evil"] {
            let answer = try HTTPClient.request(port: port, "POST", "/_/functions/who", host: host, body: "{}")
            #expect(answer.status == 404, "\(host): \(answer.text)")
            #expect(!answer.text.contains("cats\"") && !answer.text.contains("dogs\""), "\(host): \(answer.text)")
            #expect(try HTTPClient.request(port: port, "POST", "/apps/cats/_/functions/who", host: host, body: "{}").text == "\"cats\"")
        }
        // Dot segments, plain or encoded, never climb out of /apps/APP/.
        for path in ["/apps/../apps/dogs/who", "/apps/%2e%2e/apps/dogs/who", "/apps/./../apps/dogs/who", "/x/../apps/dogs/who"] {
            let answer = try HTTPClient.request(port: port, "GET", path)
            #expect(answer.status == 404, "\(path): \(answer.text)")
            #expect(!answer.text.contains("dogs /"), "\(path): \(answer.text)")
        }
        for path in ["/apps/cats/../dogs/who", "/apps/cats/%2e%2e/dogs/who", "/apps/cats/..%2f..%2fapps%2fdogs%2fwho", "/apps/cats/../../apps/dogs/who"] {
            let answer = try HTTPClient.request(port: port, "GET", path)
            #expect(!answer.text.hasPrefix("dogs"), "\(path) reached dogs: \(answer.text)")
        }
        #expect(try HTTPClient.request(port: port, "GET", "/apps/cats/../../apps/dogs/who").status == 404)
        #expect(try HTTPClient.request(port: port, "GET", "/apps/dogs/who").text == "dogs /who")
    }
}
