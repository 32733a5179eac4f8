import Foundation
import GustCore
import GustTesting
import Testing

/// `gust domains` with a real gustd over plain HTTP: a request whose Host is
/// an app's own domain reaches it as `APP.DOMAIN` does; names taken, under
/// another app's address, or malformed are refused; removing one stops it.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct DomainsTests {
    @Test(.scratchDirectory) func anOwnDomainRoutesToItsAppAndHostileNamesAreRefused() throws {
        let fixture = try PushFixture(gustdArguments: ["--reserve-domain", "console.example.test"])
        try HTTPSTests.pushed(fixture)
        #expect(try GustBinaries.gust(fixture.home, ["apps", "create", "dogs"]).status == 0)
        let host = { (name: String) in try HTTPClient.request(port: fixture.port, "GET", "/hello", host: name) }
        #expect(try host("shop.example.test").status == 404)

        let added = try GustBinaries.gust(fixture.home, ["domains", "add", "cats", "shop.example.test"])
        #expect(added.status == 0, "\(added.output)")
        for name in ["shop.example.test", "SHOP.example.test:\(fixture.port)", "shop.example.test."] {
            let answer = try host(name)
            #expect(answer.status == 200 && answer.text == "hello from cats\n", "\(name): \(answer.status) \(answer.text)")
        }
        for name in ["shop.example.test.evil", "evil-shop.example.test", "xshop.example.test"] {
            #expect(try host(name).status == 404, "\(name)")
        }
        // Not a host name and a port at all: a 400 (RFC 9112, 3.2), whichever app it might name.
        #expect(try host("shop.example.test@evil").status == 400)
        // This gustd runs without --https: a renewal would issue nothing, and says so.
        let renew = try GustBinaries.gust(fixture.home, ["domains", "renew", "cats", "shop.example.test"])
        #expect(renew.status != 0 && renew.stderr.contains("gets no certificates by ACME"), "\(renew.output)")

        // Refused: taken by another app, under another app's APP.DOMAIN (or gustd's own), malformed.
        let refusals: [(String, String)] = [
            ("shop.example.test", "taken"), ("api.cats.localhost", "cats.localhost"), ("localhost", "domain name"),
            ("cats.localhost", "address of the app cats"), ("a..b", "not a domain"), ("a-.example", "not a domain"),
            ("a.example/../x", "not a domain"), ("*.example.test", "not a domain"), ("10.0.0.1", "not a domain"),
            ("ex ample.test", "not a domain"), ("caf\u{e9}.example", "not a domain"), (String(repeating: "a", count: 64) + ".test", "not a domain"),
            ("console.example.test", "reserved for the server itself"), ("x.console.example.test", "reserved for the server itself"),
        ]
        for (name, reason) in refusals {
            let result = try GustBinaries.gust(fixture.home, ["domains", "add", "dogs", name])
            #expect(result.status != 0, "\(name) was accepted")
            #expect(result.stderr.contains(reason) || result.stdout.contains(reason), "\(name): \(result.output)")
        }
        // Under its own address is fine.
        #expect(try GustBinaries.gust(fixture.home, ["domains", "add", "cats", "api.cats.localhost"]).status == 0)

        // An own domain is its app's origin alone: another app's path address there is nobody's (its
        // pages would read cats' with cats' users' cookies), and never cats' either.
        let dogs = try fixture.workspace("dogs")
        try dogs.write("__init__.py", HTTPSTests.app.replacingOccurrences(of: "hello from cats", with: "hello from dogs"))
        try dogs.commit("Dogs")
        #expect(try dogs.push(to: fixture.home.repository(try AppName("dogs")).path).status == 0)
        #expect(try GustBinaries.gust(fixture.home, ["domains", "add", "cats", "gust.example.test"]).status == 0)
        let shared = { (path: String) in try HTTPClient.request(port: fixture.port, "GET", path, host: "gust.example.test").text }
        let other = try HTTPClient.request(port: fixture.port, "GET", "/apps/dogs/hello", host: "gust.example.test")
        #expect(other.status == 404 && !other.text.contains("hello from"), "\(other.text)")
        #expect(try shared("/hello") == "hello from cats\n")
        #expect(try HTTPClient.request(port: fixture.port, "GET", "/apps/dogs/hello").text == "hello from dogs\n", "at gustd's own address")
        #expect(try GustBinaries.gust(fixture.home, ["domains", "remove", "cats", "gust.example.test"]).status == 0)

        let listed = try GustBinaries.gust(fixture.home, ["domains", "list", "--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
        #expect(rows.map { $0["domain"] as? String } == ["api.cats.localhost", "shop.example.test"])
        #expect(rows.allSatisfy { $0["app"] as? String == "cats" && $0["status"] as? String == "pending" })

        let removed = try GustBinaries.gust(fixture.home, ["domains", "remove", "cats", "shop.example.test"])
        #expect(removed.status == 0, "\(removed.output)")
        #expect(try host("shop.example.test").status == 404)
        // Destroying an app frees its domains.
        #expect(try GustBinaries.gust(fixture.home, ["domains", "add", "dogs", "dogs.example.test"]).status == 0)
        #expect(try GustBinaries.gust(fixture.home, ["apps", "destroy", "dogs", "--confirm", "dogs"]).status == 0)
        #expect(try GustBinaries.gust(fixture.home, ["domains", "list", "--json"]).stdout.contains("dogs.example.test") == false)
    }
}
