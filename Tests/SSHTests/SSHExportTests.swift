import Foundation
import GustCore
import GustTesting
import Testing

/// `releases export --kubernetes` over a real sshd: a scoped key prints its own app's manifests, not another's.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct SSHExportTests {
    @Test(.scratchDirectory) func aScopedKeyExportsItsAppsManifestsAndNoOthers() throws {
        let fixture = try SSHFixture()
        #expect(try fixture.gust(["apps", "create", "cats"]).status == 0)
        #expect(try fixture.gust(["apps", "create", "dogs"]).status == 0)
        let store = try Store(home: fixture.home)
        for app in ["cats", "dogs"] {
            try store.recordRelease(try AppName(app), NewRelease(status: .built, buildpack: "node", description: "Deploy 1"))
        }
        let bob = try fixture.keyPair("bob")
        try fixture.addKey("bob", bob, ["--app", "cats"])

        let exported = try fixture.ssh("releases export cats v1 --kubernetes --knative", as: bob)
        #expect(exported.status == 0, "\(exported.output)")
        #expect(exported.stdout.contains("kind: Service\n") && exported.stdout.contains("apiVersion: serving.knative.dev/v1"), "\(exported.output)")

        let other = try fixture.ssh("releases export dogs v1 --kubernetes", as: bob)
        #expect(other.status != 0)
        #expect(other.stderr.contains("may not use app 'dogs'"), "\(other.output)")
        #expect(!other.stdout.contains("kind:"))
    }
}
