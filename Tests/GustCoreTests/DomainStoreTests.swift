import Foundation
import GustCore
import GustTesting
import Testing

/// Domain names are hostile input (a scoped SSH key types them): only plain
/// DNS names pass, folded to lower case; the store refuses a name another app
/// has and one under another app's `APP.DOMAIN`, and keeps what gustd records.
@Suite struct DomainStoreTests {
    @Test func onlyPlainDNSNamesAreDomains() throws {
        #expect(try DomainName("Shop.Example.COM").rawValue == "shop.example.com")
        #expect(try DomainName("xn--caf-dma.example").rawValue == "xn--caf-dma.example")
        #expect(try DomainName("a-b.c0.io").rawValue == "a-b.c0.io")
        let hostile = [
            "", "com", "example.com.", ".example.com", "a..b", "-a.example", "a-.example", "*.example.com", "a_b.example",
            "10.0.0.1", "127.1", "[::1]", "a.example/x", "a.example:80", "a.example%00", "a example.com", "caf\u{e9}.example",
            "a.example\n", "exa\u{0}mple.com", String(repeating: "a", count: 64) + ".com",
            Array(repeating: "a", count: 130).joined(separator: "."),
        ]
        for name in hostile {
            #expect(throws: GustError.self, "\(name.debugDescription)") { try DomainName(name) }
        }
        // A request's Host: the port and one trailing dot go, the rest must be a name.
        #expect(DomainName(host: "Shop.Example.com:8443")?.rawValue == "shop.example.com")
        #expect(DomainName(host: "shop.example.com.")?.rawValue == "shop.example.com")
        #expect(DomainName(host: "user@shop.example.com") == nil)
        #expect(DomainName(host: "[::1]:80") == nil)
        #expect(try DomainName("api.shop.example.com").parents.map(\.rawValue) == ["shop.example.com", "example.com"])
        #expect(try DomainName("example.com").parents.isEmpty)
    }

    /// A public suffix (`co.uk`, `github.io`) is no app's domain: a tenant holding one would, by the
    /// rule that names under an app's domain are that app's, keep every other tenant from every name
    /// under it.
    @Test func publicSuffixesAreReadAsTheListSays() throws {
        let list = PublicSuffixes(list: "// comment\ncom\nuk\nco.uk extra words\n*.ck\n!www.ck\ngithub.io\n公司.cn\n\n")
        for suffix in ["co.uk", "github.io", "anything.ck"] {
            #expect(list.isSuffix(try DomainName(suffix)), "\(suffix)")
        }
        for name in ["example.co.uk", "shop.github.io", "www.ck", "example.com", "a.b.ck"] {
            #expect(!list.isSuffix(try DomainName(name)), "\(name)")
        }
    }

    /// The list writes internationalised suffixes in Unicode (`公司.cn`); a domain reaches Gust in
    /// the form DNS and certificates use (`xn--55qx5d.cn`), and is a suffix all the same.
    @Test func internationalisedSuffixesMatchInTheFormDNSUses() throws {
        let list = PublicSuffixes(list: "cn\n公司.cn\nno\nákŋoluokta.no\n*.香港\n!www.香港\nрф\n")
        for suffix in ["xn--55qx5d.cn", "xn--koluokta-7ya57h.no", "anything.xn--j6w193g"] {
            #expect(list.isSuffix(try DomainName(suffix)), "\(suffix)")
        }
        for name in ["shop.xn--55qx5d.cn", "shop.xn--koluokta-7ya57h.no", "shop.xn--p1ai", "www.xn--j6w193g"] {
            #expect(!list.isSuffix(try DomainName(name)), "\(name)")
        }
    }

    @Test(.scratchDirectory) func anAppCannotHaveAPublicSuffixAndOneHeldBeforeHoldsNothingBelowIt() throws {
        let store = try Store(home: GustHome(path: ScratchDirectory.current.path))
        let (cats, dogs) = (try AppName("cats"), try AppName("dogs"))
        _ = try store.createApp(cats)
        _ = try store.createApp(dogs)
        let list = PublicSuffixes(list: "uk\nco.uk\nio\ngithub.io\n")
        for suffix in ["co.uk", "github.io"] {
            #expect(throws: GustError.self, "\(suffix)") { try store.addDomain(try DomainName(suffix), to: cats, suffixes: list) }
        }
        // One added before suffixes were refused (no list then) keeps no one out from below it.
        try store.addDomain(try DomainName("co.uk"), to: cats, suffixes: nil)
        try store.addDomain(try DomainName("shop.co.uk"), to: dogs, suffixes: list)
        #expect(try store.domainOwner(try DomainName("shop.co.uk")) == dogs)
        // Below an ordinary name the rule holds as before.
        try store.addDomain(try DomainName("example.co.uk"), to: cats, suffixes: list)
        #expect(throws: GustError.self) { try store.addDomain(try DomainName("api.example.co.uk"), to: dogs, suffixes: list) }
    }

    /// Debian's list (`publicsuffix`, which scripts/install-deps.sh installs) is what `gust domains add` checks.
    @Test func debiansListKnowsTheCommonSuffixes() throws {
        let list = try #require(PublicSuffixes.standard, "\(PublicSuffixes.standardPath) is not installed")
        for suffix in ["co.uk", "com.au", "github.io", "herokuapp.com", "xn--55qx5d.cn", "xn--mxtq1m.xn--j6w193g", "xn--koluokta-7ya57h.no"] {
            #expect(list.isSuffix(try DomainName(suffix)), "\(suffix)")
        }
        for name in ["example.co.uk", "example.com", "shop.github.io"] {
            #expect(!list.isSuffix(try DomainName(name)), "\(name)")
        }
    }

    @Test(.scratchDirectory) func aDomainHasOneAppAndAppsKeepTheirAddresses() throws {
        let store = try Store(home: GustHome(path: ScratchDirectory.current.path))
        let (cats, dogs) = (try AppName("cats"), try AppName("dogs"))
        _ = try store.createApp(cats)
        _ = try store.createApp(dogs)
        try store.setDaemonDomain("Gust.Example")

        try store.addDomain(try DomainName("shop.example.com"), to: cats)
        #expect(throws: GustError.self) { try store.addDomain(try DomainName("shop.example.com"), to: dogs) }
        #expect(throws: GustError.self) { try store.addDomain(try DomainName("shop.example.com"), to: cats) }
        // Under another app's own domain: its names, not another tenant's; the owner may add them.
        #expect(throws: GustError.self) { try store.addDomain(try DomainName("api.shop.example.com"), to: dogs) }
        #expect(throws: GustError.self) { try store.addDomain(try DomainName("a.b.shop.example.com"), to: dogs) }
        try store.addDomain(try DomainName("api.shop.example.com"), to: cats)
        try store.removeDomain(try DomainName("api.shop.example.com"), from: cats)
        // The server's own names (gustd --reserve-domain), and names under them: no app's.
        try store.setDaemonReservedDomains([try DomainName("console.example.net")])
        #expect(try store.daemonReservedDomains() == [try DomainName("console.example.net")])
        for reserved in ["console.example.net", "a.console.example.net"] {
            #expect(throws: GustError.self, "\(reserved)") { try store.addDomain(try DomainName(reserved), to: cats) }
        }
        try store.addDomain(try DomainName("shop.example.net"), to: cats)
        try store.removeDomain(try DomainName("shop.example.net"), from: cats)
        for name in ["gust.example", "cats.gust.example", "api.cats.gust.example", "newapp.gust.example", "x.y.newapp.gust.example"] {
            #expect(throws: GustError.self, "\(name)") { try store.addDomain(try DomainName(name), to: dogs) }
        }
        try store.addDomain(try DomainName("api.dogs.gust.example"), to: dogs)
        try store.addDomain(try DomainName("gust.example.org"), to: dogs)
        #expect(try store.domainOwner(try DomainName("api.dogs.gust.example")) == dogs)

        try store.recordCertificate(try DomainName("shop.example.com"), .failed("connection refused"))
        var shop = try #require(try store.domains(of: cats).first)
        #expect(shop.status == "failed" && shop.error == "connection refused")
        try store.requestRenewal(shop.name, of: cats)
        #expect(try store.domains(of: cats).first?.renewRequested == true)
        let expiry = Date(timeIntervalSince1970: 2_000_000_000)
        try store.recordCertificate(shop.name, .issued(expiresAt: expiry, serial: "0A1B"))
        shop = try #require(try store.domains(of: cats).first)
        #expect(shop.status == "issued" && shop.error == nil && shop.expiresAt == expiry && shop.serial == "0A1B" && !shop.renewRequested)

        #expect(throws: GustError.self) { try store.removeDomain(shop.name, from: dogs) }
        try store.removeDomain(shop.name, from: cats)
        #expect(try store.domains(of: cats).isEmpty)
        // An app's domains go with it.
        try store.deleteApp(dogs)
        #expect(try store.domains().isEmpty)
    }
}
