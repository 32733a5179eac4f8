import Foundation
import GustCore
import GustTesting
import Testing

/// Every app's path addresses on a host (`/apps/APP/`) share one browser origin: an answer there
/// loses the headers that act on the whole origin, so that one app's service worker cannot take
/// the scope `/` (every other app's pages) and one app cannot clear every other's cookies. At its
/// own host (`APP.DOMAIN`) the origin is the app's alone, and they reach the browser.
@Suite(.timeLimit(.minutes(10)))
struct SharedOriginTests {
    static let app = """
        import gust

        @gust.handler('sw.js', methods=['GET', 'POST'])
        def worker(request):
            return gust.Response('self.onfetch = () => {};', headers={
                'Content-Type': 'text/javascript', 'Service-Worker-Allowed': '/', 'Clear-Site-Data': '"cookies"', 'X-Kept': 'yes',
            })
        """

    @Test(.scratchDirectory) func originWideHeadersReachTheBrowserOnlyFromAnAppsOwnHost() throws {
        let fixture = try PushFixture()
        let push = try fixture.pushPython(Self.app)
        try #require(push.status == 0, "\(push.output)")

        // The lane (a GET without a body) and Hummingbird's path (a request with one), at the path address.
        for (method, body) in [("GET", nil), ("POST", "x")] as [(String, String?)] {
            let answer = try HTTPClient.request(port: fixture.port, method, "/apps/cats/sw.js", body: body)
            #expect(answer.status == 200, "\(method): \(answer.status) \(answer.text)")
            #expect(answer.headers["x-kept"] == "yes", "\(method): \(answer.headers)")
            #expect(answer.headers["service-worker-allowed"] == nil && answer.headers["clear-site-data"] == nil, "\(method): \(answer.headers)")
        }
        let own = try HTTPClient.request(port: fixture.port, "GET", "/sw.js", host: "cats.localhost")
        #expect(own.status == 200, "\(own.status) \(own.text)")
        #expect(own.headers["service-worker-allowed"] == "/" && own.headers["clear-site-data"] == "\"cookies\"", "\(own.headers)")
    }

    static let cookies = """
        import gust

        @gust.handler('cookie')
        def cookie(request):
            domain = request.query.get('domain')
            return gust.Response('ok', headers={
                'Set-Cookie': 'session=chosen-by-cats; Path=/' + ('; Domain=' + domain if domain else ''),
                'Strict-Transport-Security': 'max-age=31536000; includeSubDomains',
            })
        """

    /// Every app's own host under `--domain` (`APP.localhost` here) shares the parent domain: a cookie
    /// set for it would be sent to every other app (one app could fix another's session cookie). It
    /// is dropped, one for the app's own host or none kept. At a path address, HSTS is dropped too: it
    /// would have browsers refuse the host, and every app's host with `includeSubDomains`, over HTTP.
    @Test(.scratchDirectory) func aCookieForTheDomainAppsShareAndHSTSAtAPathAddressAreDropped() throws {
        let fixture = try PushFixture()
        let push = try fixture.pushPython(Self.cookies)
        try #require(push.status == 0, "\(push.output)")
        func cookie(_ query: String, host: String? = "cats.localhost", path: String = "/cookie") throws -> HTTPResult {
            let answer = try HTTPClient.request(port: fixture.port, "GET", path + query, host: host)
            #expect(answer.status == 200, "\(answer.status) \(answer.text)")
            return answer
        }
        let plain = try cookie("")
        #expect(plain.headers["set-cookie"] == "session=chosen-by-cats; Path=/", "\(plain.headers)")
        #expect(plain.headers["strict-transport-security"] != nil, "the app's own host: \(plain.headers)")
        #expect(try cookie("?domain=Cats.localhost").headers["set-cookie"] != nil, "the app's own host, in any case")
        for shared in ["localhost", ".localhost", "LOCALHOST"] {
            let answer = try cookie("?domain=\(shared)")
            #expect(answer.headers["set-cookie"] == nil, "Domain=\(shared): \(answer.headers)")
        }
        let atPath = try cookie("", host: nil, path: "/apps/cats/cookie")
        #expect(atPath.headers["strict-transport-security"] == nil, "\(atPath.headers)")
        #expect(atPath.headers["set-cookie"] != nil, "a host-only cookie at a path address: its origin is shared whole anyway")
        // At a path address on the domain's own host (the name path addresses are reached at), a
        // cookie for the domain would reach every app's host: none with a Domain is kept there.
        for domain in ["localhost", ".localhost", "LOCALHOST", "cats.localhost"] {
            let answer = try cookie("?domain=\(domain)", host: "localhost:\(fixture.port)", path: "/apps/cats/cookie")
            #expect(answer.headers["set-cookie"] == nil, "Domain=\(domain) at localhost/apps/cats/: \(answer.headers)")
        }
    }

    /// A WebSocket's 101 is a third way an answer reaches the browser: at a path address it loses
    /// what acts on the whole origin (HSTS, Clear-Site-Data) as the other two do; at the app's own
    /// host it keeps them.
    @Test(.scratchDirectory) func aWebSocketsSwitchAtAPathAddressLosesWhatActsOnTheOrigin() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("ws")
        let modules = work.directory.appendingPathComponent("node_modules")
        try MountTests.vendor("ws", into: modules)
        try work.write("package.json", #"{"name": "ws-headers", "version": "1.0.0", "main": "index.js", "private": true}"#)
        try work.write("index.js", """
            const { WebSocketServer } = require('ws');
            const gust = require('gust');

            const sockets = new WebSocketServer({ server: gust.server, path: '/echo' });
            sockets.on('headers', (headers) => {
              headers.push('Strict-Transport-Security: max-age=31536000; includeSubDomains');
              headers.push('Clear-Site-Data: "cookies"');
              headers.push('X-Kept: yes');
            });
            sockets.on('connection', (socket) => socket.on('message', (data) => socket.send(`echo: ${data}`)));
            gust.op('hello', () => 'hi');

            """)
        try work.commit("ws with origin-wide headers")
        let push = try work.push(to: fixture.remote)
        try #require(push.status == 0, "\(push.output)")
        func switched(_ url: String) throws -> [String: Any] {
            let lines = try WebSocketTests.client(url, ["text:hi"], options: ["--connect", "127.0.0.1"])
            #expect(lines.first?["status"] as? Int == 101, "\(url): \(lines)")
            return (lines.first?["headers"] as? [String: Any]) ?? [:]
        }
        let atPath = try switched("ws://127.0.0.1:\(fixture.port)/apps/cats/echo")
        let names = Set(atPath.keys.map { $0.lowercased() })
        #expect(names.contains("x-kept"), "\(atPath)")
        #expect(!names.contains("strict-transport-security") && !names.contains("clear-site-data"), "\(atPath)")
        let byHost = Set(try switched("ws://cats.localhost:\(fixture.port)/echo").keys.map { $0.lowercased() })
        #expect(byHost.contains("strict-transport-security"), "\(byHost)")
    }
}
