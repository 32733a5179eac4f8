import GustCore
import GustTesting
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
        "/_gust%CC%8C/manifest", "/_/%CC%81x", "/_/%CC%81",
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

    /// A combining mark after a `/` is a segment's first scalar, as the runtimes read it (they split
    /// the decoded path at each `/`), not part of the segment before it, as a split by characters
    /// has it: gustd would route one path and the runtime dispatch another.
    @Test func aCombiningMarkAfterASlashStartsTheNextSegment() {
        let path = RequestPath(percentEncoded: "/a/%CC%81b/%CC%81")
        #expect(path.segments == ["a", "\u{301}b", "\u{301}"])
        #expect(path.percentEncoded == "/a/%CC%81b/%CC%81")
        #expect(RequestPath(percentEncoded: "/x/..%CC%81/y").resolvingDotSegments().segments == ["x", "..\u{301}", "y"])
        #expect(RequestPath(percentEncoded: "/x/%CC%81/../y").resolvingDotSegments().segments == ["x", "y"])
    }

    // The byte-wise split, and the fast paths for targets and hosts, against the reading they
    // stand in for, on hostile spellings made up of the pieces that matter.

    @Test func pathsSplitAsTheRuntimesSplitThem() {
        var random = SplitMix(seed: 11)
        for _ in 0..<5_000 {
            let raw = random.text(of: ["/", "/", ".", "..", "%2e", "%2F", "%5c", "\\", "a", "_", "_gust", "health", "%", "%zz", "~", "é", "\u{301}", "%CC%81"])
            let decoded = RequestPath.percentDecoded(raw)
            // Python's `path.split('/')` on the decoded path, empty and `.` segments left out.
            let expected = RequestPath(
                segments: decoded.unicodeScalars.split(separator: "/", omittingEmptySubsequences: true)
                    .map { String(String.UnicodeScalarView($0)) }.filter { $0 != "." },
                hasTrailingSlash: decoded.unicodeScalars.last == "/")
            let path = RequestPath(percentEncoded: raw)
            #expect(path == expected, "\(raw.debugDescription)")
            var resolved: [String] = []
            for segment in expected.segments {
                if segment == ".." { _ = resolved.popLast() } else { resolved.append(segment) }
            }
            let expectedResolved = RequestPath(segments: resolved, hasTrailingSlash: expected.hasTrailingSlash || expected.segments.last == "..")
            #expect(path.resolvingDotSegments() == expectedResolved, "\(raw.debugDescription)")
            #expect(path.resolvingDotSegments().isHealth == (path.resolvingDotSegments().decoded == "/_/health"), "\(raw.debugDescription)")
        }
    }

    @Test func targetsSplitAtTheirFirstQuestionMarkAsCharactersDo() {
        var random = SplitMix(seed: 12)
        for _ in 0..<5_000 {
            let target = random.text(of: ["/", "?", "??", "a", "=", "&", "#", "%3F", "é", "?\u{301}", ""])
            let split = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
            let (path, query) = RequestPath.splitTarget(target)
            #expect(path == split[0] && query == (split.count > 1 ? split[1] : nil), "\(target.debugDescription)")
        }
    }

    @Test func hostsAreReadAsCharactersWouldReadThem() {
        var random = SplitMix(seed: 13)
        for _ in 0..<5_000 {
            let host = random.text(of: ["cats", "Cats", ".", "localhost", ":", "8080", "[", "]", "-", "127.0.0.1", "é", ":\u{301}", "x"])
            #expect(AppAddress.hostName(host) == (host.split(separator: ":", maxSplits: 1).first.map { $0.lowercased() } ?? ""), "\(host.debugDescription)")
            var name = Substring(host)
            if let colon = name.lastIndex(of: ":"), !name.contains("]") { name = name[..<colon] }
            if name.hasSuffix(".") { name = name.dropLast() }
            #expect(DomainName(host: Substring(host))?.rawValue == Self.domainName(name), "\(host.debugDescription)")
        }
    }

    @Test func appsAreNamedByHostAsCharactersWouldNameThem() {
        var random = SplitMix(seed: 14)
        let domains = ["localhost", "LocalHost", "example.com", "Ex-ample.COM", "é.test", "", "x"]
        for _ in 0..<5_000 {
            let name = random.text(of: ["cats", "cat-s", ".", "localhost", "example", ".com", "-", "9", "é", "\u{301}", "x", "A"])
            let domain = domains.randomElement(using: &random)!
            // As it was read before the byte-wise form.
            let suffix = "." + domain.lowercased()
            let expected = name.hasSuffix(suffix) ? try? AppName(String(name.dropLast(suffix.count))) : nil
            #expect(AppAddress.app(named: name, under: domain) == expected, "\(name.debugDescription) under \(domain.debugDescription)")
        }
        #expect(AppAddress.app(named: "cats.example.com", under: "Example.COM")?.rawValue == "cats")
        #expect(AppAddress.app(named: "cats.example.com", under: "ample.com") == nil)
    }

    /// `DomainName`'s check as it was written before its one-pass form: lower-cased, split into labels.
    private static func domainName(_ raw: Substring) -> String? {
        let lowered = String(decoding: raw.utf8.map { (65...90).contains($0) ? $0 + 32 : $0 }, as: UTF8.self)
        let bytes = Array(lowered.utf8)
        guard !bytes.isEmpty, bytes.count <= 253 else { return nil }
        let labels = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard labels.count >= 2 else { return nil }
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-".utf8)
        for label in labels {
            guard (1...63).contains(label.count), label.first != UInt8(ascii: "-"), label.last != UInt8(ascii: "-") else { return nil }
            guard label.allSatisfy(allowed.contains) else { return nil }
        }
        return labels.last!.allSatisfy({ (48...57).contains($0) }) ? nil : lowered
    }
}

extension SplitMix {
    /// Up to 12 of `pieces` joined, chosen at random.
    mutating func text(of pieces: [String]) -> String {
        (0..<Int.random(in: 0...12, using: &self)).map { _ in pieces.randomElement(using: &self)! }.joined()
    }

    /// `bytes` changed `times` times at random places: one of `pieces` put in, a byte taken out,
    /// or a byte replaced by a piece's first.
    mutating func mutated(_ bytes: [UInt8], with pieces: [[UInt8]], times: ClosedRange<Int>) -> [UInt8] {
        var bytes = bytes
        for _ in 0..<Int.random(in: times, using: &self) where !bytes.isEmpty {
            let at = Int.random(in: 0..<bytes.count, using: &self)
            switch Int.random(in: 0..<3, using: &self) {
            case 0: bytes.insert(contentsOf: pieces.randomElement(using: &self)!, at: at)
            case 1: bytes.remove(at: at)
            default: bytes[at] = pieces.randomElement(using: &self)!.first!
            }
        }
        return bytes
    }
}
