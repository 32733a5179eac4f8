import GustCore
import Testing

@testable import GustDaemon

/// What gustd does for `gust dev` and `gust call`, without processes: one app
/// at the root (`--only-app`), and a call's lines credited with its request id.
@Suite struct DevSurfaceTests {
    @Test func onlyAppTakesEveryHostAndPathAndNeverClimbsOut() throws {
        let cats = try AppName("cats")
        let byName = AppAddress(host: "dogs.localhost:8000", path: RequestPath(percentEncoded: "/apps/dogs/x"), domain: "localhost", only: cats)
        #expect(byName?.app == cats)
        #expect(byName?.path.decoded == "/apps/dogs/x", "the whole path is the app's own")
        let dotted = AppAddress(host: "127.0.0.1:8000", path: RequestPath(percentEncoded: "/a/../../_gust/manifest"), domain: "localhost", only: cats)
        #expect(dotted?.path.decoded == "/_gust/manifest")
        #expect(dotted?.path.reachesReservedSurface == true, "the internal surface stays refused")
        #expect(AppAddress(host: "127.0.0.1:8000", path: RequestPath(percentEncoded: "/x"), domain: "localhost") == nil, "without it, no app")
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
