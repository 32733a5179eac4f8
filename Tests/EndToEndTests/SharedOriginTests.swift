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
}
