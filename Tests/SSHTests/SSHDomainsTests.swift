import Foundation
import GustCore
import GustTesting
import Testing

/// `domains` over SSH through the real sshd: a key scoped to an app manages
/// that app's domains and sees only them; another app's domains, and names
/// that are not plain DNS names, are refused and nothing is stored.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct SSHDomainsTests {
    @Test(.scratchDirectory) func aScopedKeyManagesItsAppsDomainsOnly() throws {
        let fixture = try SSHFixture()
        for app in ["cats", "dogs"] { #expect(try fixture.gust(["apps", "create", app]).status == 0) }
        #expect(try fixture.gust(["domains", "add", "dogs", "dogs.example.com"]).status == 0)
        let bob = try fixture.keyPair("bob")
        try fixture.addKey("bob", bob, ["--app", "cats"])

        let added = try fixture.ssh("domains add cats Shop.Example.com", as: bob)
        #expect(added.status == 0, "\(added.output)")
        let listed = try fixture.ssh("domains list --json", as: bob)
        #expect(listed.status == 0, "\(listed.output)")
        #expect(listed.stdout.contains("shop.example.com") && !listed.stdout.contains("dogs.example.com"), "\(listed.stdout)")
        #expect(try fixture.ssh("domains list cats", as: bob).stdout.contains("shop.example.com"))

        for command in [
            "domains add dogs evil.example.com", "domains remove dogs dogs.example.com", "domains list dogs",
            "domains renew dogs dogs.example.com", "domains add cats dogs.example.com",
            "domains add cats 'a..example.com'", "domains add cats ../etc/passwd", "domains add cats \"x.example.com/..\"",
        ] {
            let refused = try fixture.ssh(command, as: bob)
            #expect(refused.status != 0, "\(command): \(refused.output)")
        }
        let stored = try Store(home: fixture.home).domains().map(\.name.rawValue)
        #expect(stored == ["dogs.example.com", "shop.example.com"])
        #expect(try Store(home: fixture.home).domainOwner(try DomainName("dogs.example.com"))?.rawValue == "dogs")

        let removed = try fixture.ssh("domains remove cats shop.example.com", as: bob)
        #expect(removed.status == 0, "\(removed.output)")
        #expect(try Store(home: fixture.home).domains(of: try AppName("cats")).isEmpty)
    }
}
