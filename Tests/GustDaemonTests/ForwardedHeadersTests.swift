import Foundation
import GustTesting
@testable import GustDaemon
import Testing

/// The image's entrypoint (buildpacks/image/entrypoint.py) is an exported release's edge, where gustd
/// is a server's: what proxies say of the client reaches an app from a trusted proxy only, in both,
/// by one list.
@Suite struct ForwardedHeadersTests {
    @Test func theImagesEntrypointBelievesTheSameProxyClaimsAsGustd() throws {
        let source = try String(
            contentsOf: GustBinaries.sourceRoot.appendingPathComponent("buildpacks/image/entrypoint.py"), encoding: .utf8
        )
        let start = try #require(source.range(of: "PROXY_CLAIMS = frozenset({"))
        let end = try #require(source.range(of: "})", range: start.upperBound..<source.endIndex))
        let names = source[start.upperBound..<end.lowerBound].split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespacesAndNewlines).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }.filter { !$0.isEmpty }
        #expect(Set(names) == ForwardedHeaders.proxyClaims)
        #expect(names.count == ForwardedHeaders.proxyClaims.count, "no name twice")
    }
}
