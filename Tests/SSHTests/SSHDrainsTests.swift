import Foundation
import GustCore
import GustTesting
import Testing

/// `gust drains` over a real sshd: a scoped key manages its own app's drains, not another's,
/// and may not let one reach private addresses; an admin key may.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct SSHDrainsTests {
    @Test(.scratchDirectory) func aScopedKeyDrainsItsAppButNotToPrivateAddresses() throws {
        let fixture = try SSHFixture()
        #expect(try fixture.gust(["apps", "create", "cats"]).status == 0)
        #expect(try fixture.gust(["apps", "create", "dogs"]).status == 0)
        let bob = try fixture.keyPair("bob")
        try fixture.addKey("bob", bob, ["--app", "cats"])

        let added = try fixture.ssh("drains add cats https://logs.example.com/in", as: bob)
        #expect(added.status == 0, "\(added.output)")
        let listed = try fixture.ssh("drains list cats --json", as: bob)
        #expect(listed.stdout.contains("https://logs.example.com/in"), "\(listed.output)")

        let other = try fixture.ssh("drains add dogs https://logs.example.com/in", as: bob)
        #expect(other.status != 0 && other.stderr.contains("may not use app 'dogs'"), "\(other.output)")
        let privateAddress = try fixture.ssh("drains add cats http://127.0.0.1:9/ --allow-private", as: bob)
        #expect(privateAddress.status != 0 && privateAddress.stderr.contains("Only admin keys"), "\(privateAddress.output)")

        let store = try Store(home: fixture.home)
        #expect(try store.drains(try AppName("cats")).map(\.target.url) == ["https://logs.example.com/in"])
        #expect(try store.drains(try AppName("dogs")).isEmpty)

        let admin = try fixture.keyPair("alice")
        try fixture.addKey("alice", admin, ["--admin"])
        let allowed = try fixture.ssh("drains add dogs http://127.0.0.1:9/ --allow-private", as: admin)
        #expect(allowed.status == 0, "\(allowed.output)")
        #expect(try store.drains(try AppName("dogs")).first?.allowPrivate == true)
    }
}
