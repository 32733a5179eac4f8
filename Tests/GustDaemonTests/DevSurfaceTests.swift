import GustCore
import Testing

@testable import GustDaemon

/// What gustd does for `gust dev` and `gust call`, without processes: one app
/// at the root (`--only-app`), and a call's lines credited with its request id.
@Suite struct DevSurfaceTests {
    @Test func onlyAppTakesEveryLoopbackHostAndPathAndNeverClimbsOut() throws {
        let cats = try AppName("cats")
        let byName = AppAddress(host: "dogs.localhost:8000", path: RequestPath(percentEncoded: "/apps/dogs/x"), domain: "localhost", only: cats)
        #expect(byName?.app == cats)
        #expect(byName?.path.decoded == "/apps/dogs/x", "the whole path is the app's own")
        let dotted = AppAddress(host: "127.0.0.1:8000", path: RequestPath(percentEncoded: "/a/../../_gust/manifest"), domain: "localhost", only: cats)
        #expect(dotted?.path.decoded == "/_gust/manifest")
        #expect(dotted?.path.reachesReservedSurface == true, "the internal surface stays refused")
        #expect(AppAddress(host: "127.0.0.1:8000", path: RequestPath(percentEncoded: "/x"), domain: "localhost") == nil, "without it, no app")
    }

    /// `gust dev` serves on a loopback port with the developer's `.env`: a page elsewhere that
    /// rebinds its own name to 127.0.0.1 could call the app and read its answers. Only loopback
    /// names are answered (as Vite's and webpack's dev servers do).
    @Test(arguments: ["localhost:8000", "LOCALHOST", "app.localhost:8000", "127.0.0.1:8000", "127.1.2.3", "[::1]:8000", "[::1]"])
    func onlyAppAnswersLoopbackNames(_ host: String) throws {
        let cats = try AppName("cats")
        #expect(AppAddress(host: host, path: RequestPath(percentEncoded: "/x"), domain: "localhost", only: cats)?.app == cats, "\(host)")
    }

    @Test(arguments: ["rebind.example:8000", "attacker.example", "localhost.example", "127.0.0.1.nip.io", "192.168.1.5:8000", "[::2]:8000", ""])
    func onlyAppRefusesOtherNames(_ host: String) throws {
        let cats = try AppName("cats")
        #expect(AppAddress(host: host, path: RequestPath(percentEncoded: "/x"), domain: "localhost", only: cats) == nil, "\(host)")
        #expect(AppAddress(host: nil, path: RequestPath(percentEncoded: "/x"), domain: "localhost", only: cats)?.app == cats, "no Host (HTTP/1.0): no page sent it")
    }

    @Test func aTaggedLineCarriesItsCallsRequestID() {
        var calls = CallFunctions()
        calls.begin("7", "op greet", request: "gust-call-abc")
        calls.begin("8", "op other")
        calls.end("7")
        #expect(calls.credit(of: "7") == CallFunctions.Credit(function: "op greet", request: "gust-call-abc"), "also just after it ended")
        #expect(calls.credit(of: "8")?.request == nil)
    }
}
