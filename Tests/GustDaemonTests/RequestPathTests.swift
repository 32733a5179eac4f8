import GustCore
@testable import GustDaemon
import Testing

/// How gustd reads a request's path: as the runtime will, so that no spelling
/// of `/_gust` or `/_/…` gets past the gateway.
struct RequestPathTests {
    @Test(arguments: [
        "/_gust/manifest", "/%5fgust/manifest", "/%5Fgust/manifest", "/_GUST/manifest", "/%5F%47UST/manifest",
        "//_gust/manifest", "/./_gust/manifest", "/x/../_gust/manifest", "/x/%2e%2e/_gust/manifest", "/%2E%2E/_gust/manifest",
        "/%255fgust/manifest", "/%25255Fgust/manifest", "/x/%252e%252e/_gust/manifest", "/%5c_gust/manifest",
        "/_gust%2fschedules%2fpurge", "/_gust", "/_gustx", "/_", "/_/", "/_/functions", "/_/functions/",
        "/_/schedules/purge", "/%5f/records/../schedules", "/_/functions/../../_gust/ops/x", "/_/%66unctions/../x",
        "/_gust%CC%8C/manifest",
    ])
    func reservedSpellingsAreRefused(_ raw: String) {
        #expect(RequestPath(percentEncoded: raw).resolvingDotSegments().reachesReservedSurface, "\(raw)")
    }

    @Test(arguments: ["/", "/hello", "/cat/feed/", "/caf%C3%A9", "/100%25", "/a%2Fb", "/_/functions/food:buy", "/_/records/cat/1",
                      "/_/health", "/x_gust", "/gust/_gust", "/bad%zz"])
    func ordinaryPathsPass(_ raw: String) {
        #expect(!RequestPath(percentEncoded: raw).resolvingDotSegments().reachesReservedSurface, "\(raw)")
    }

    @Test func theTargetIsCanonicalAndDecodesOnceToTheSamePath() {
        let cases: [(String, String, String)] = [
            ("/hello", "/hello", "/hello"),
            ("//cat///feed/", "/cat/feed/", "/cat/feed/"),
            ("/a/./b/../c", "/a/c", "/a/c"),
            ("/../../x", "/x", "/x"),
            ("/caf%C3%A9", "/café", "/caf%C3%A9"),
            ("/100%25", "/100%", "/100%25"),
            ("/%25255f", "/%255f", "/%25255f"),
            ("/a%2Fb", "/a/b", "/a/b"),
            ("/q%3Fx%23y", "/q?x#y", "/q%3Fx%23y"),
            ("/back%5Cslash", "/back\\slash", "/back%5Cslash"),
            ("/bad%zz", "/bad%zz", "/bad%25zz"),
            ("/food:buy", "/food:buy", "/food:buy"),
        ]
        for (raw, decoded, target) in cases {
            let path = RequestPath(percentEncoded: raw).resolvingDotSegments()
            #expect(path.decoded == decoded, "\(raw)")
            #expect(path.percentEncoded == target, "\(raw)")
            #expect(RequestPath.percentDecoded(path.percentEncoded) == path.decoded, "\(raw)")
        }
    }

    @Test func dotSegmentsNeverLeaveTheAppNamedByThePath() {
        let cases: [(String, String?, String?)] = [
            ("/apps/cats/x", "cats", "/x"),
            ("/apps/cats", "cats", "/"),
            ("/apps/cats/../../apps/dogs/x", "cats", "/apps/dogs/x"),
            ("/apps/../apps/dogs/x", nil, nil),
            ("/apps/%2e%2e/apps/dogs/x", nil, nil),
            ("/x/../apps/dogs/", nil, nil),
            ("//apps//cats//_/health", "cats", "/_/health"),
        ]
        for (raw, app, path) in cases {
            let address = AppAddress(host: "127.0.0.1:8080", path: RequestPath(percentEncoded: raw), domain: "localhost")
            #expect(address?.app.rawValue == app, "\(raw)")
            #expect(address?.path.decoded == path, "\(raw)")
        }
    }

    @Test func theHostNamesTheAppOnlyUnderTheDomain() {
        let path = RequestPath(percentEncoded: "/apps/dogs/x")
        #expect(AppAddress(host: "cats.localhost:8080", path: path, domain: "localhost")?.app.rawValue == "cats")
        #expect(AppAddress(host: "cats.localhost:8080", path: path, domain: "localhost")?.path.decoded == "/apps/dogs/x")
        for host in ["evil", "cats.localhost.evil", "localhost", ".localhost", "cats.evil:80"] {
            #expect(AppAddress(host: host, path: path, domain: "localhost")?.app.rawValue == "dogs", "\(host)")
        }
    }
}
