import Foundation
import GustCore
import GustTesting
import Testing

/// `gustd --https` with the operator's own certificate (`--tls-cert`): a real
/// gustd, a real push, an openssl-made ECDSA P-256 certificate for `*.gust.test`
/// and an app's own domain, and curl checking it by name over loopback.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct HTTPSTests {
    static let app = """
        import gust

        @gust.handler('hello', methods=['GET'])
        def hello(request):
            return 'hello from cats\\n'

        """

    static func pushed(_ fixture: PushFixture) throws {
        let work = try fixture.workspace("cats")
        try work.write("__init__.py", Self.app)
        try work.commit("Cats")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
    }

    @Test(.scratchDirectory) func anOwnCertificateServesAppsByNameOverTLSAndHTTPRedirects() throws {
        let root = ScratchDirectory.current
        let (cert, key) = try TLSTools.selfSigned(["gust.test", "*.gust.test", "shop.example.test"], in: root)
        let fixture = try PushFixture(gustdArguments: [
            "--domain", "gust.test", "--https", "127.0.0.1:0", "--tls-cert", cert.path, "--tls-key", key.path, "--redirect-https",
            "--no-acme",
        ])
        try Self.pushed(fixture)
        let https = try TLSTools.httpsPort(fixture.home)

        // By APP.DOMAIN, certificate checked against the name; TLS 1.3 and 1.2 both.
        let byName = try TLSTools.curl("cats.gust.test", port: https, path: "/hello", ca: cert, extra: ["--tlsv1.3"])
        #expect(byName.status == 0 && byName.stdout == "hello from cats\n\n200", "\(byName.output)\n\(fixture.gustd!.logText.suffix(2000))")
        let tls12 = try TLSTools.curl("cats.gust.test", port: https, path: "/hello", ca: cert, extra: ["--tlsv1.2", "--tls-max", "1.2"])
        #expect(tls12.stdout.hasSuffix("200"), "\(tls12.output)")
        // The app's health over TLS (answered from the bytes after the TLS handler, `PlainLane`); over
        // HTTP its name is redirected like any other path, and /apps/ is not.
        let health = try TLSTools.curl("cats.gust.test", port: https, path: "/_/health", ca: cert)
        #expect(health.stdout.contains(#""app":"cats""#) && health.stdout.hasSuffix("200"), "\(health.output)")
        let plainHealth = try HTTPClient.request(port: fixture.port, "GET", "/_/health", host: "cats.gust.test")
        #expect(plainHealth.status == 301 && plainHealth.headers["location"] == "https://cats.gust.test:\(https)/_/health")
        #expect(try HTTPClient.request(port: fixture.port, "GET", "/apps/cats/_/health", host: "x").status == 200)

        // An app's own domain: refused while no app has it, then served over HTTPS by its name.
        #expect(try TLSTools.curl("shop.example.test", port: https, path: "/hello", ca: cert).stdout.hasSuffix("404"))
        let added = try GustBinaries.gust(fixture.home, ["domains", "add", "cats", "Shop.Example.Test"])
        #expect(added.status == 0, "\(added.output)")
        let shop = try TLSTools.curl("shop.example.test", port: https, path: "/hello", ca: cert)
        #expect(shop.stdout == "hello from cats\n\n200", "\(shop.output)")

        // HTTP → 301 to HTTPS for the apps' names, the path and query kept; other hosts and /apps/ are served as before.
        let redirected = try HTTPClient.request(port: fixture.port, "GET", "/hello?x=1", host: "cats.gust.test:\(fixture.port)")
        #expect(redirected.status == 301)
        #expect(redirected.headers["location"] == "https://cats.gust.test:\(https)/hello?x=1", "\(redirected.headers)")
        let own = try HTTPClient.request(port: fixture.port, "GET", "/hello", host: "shop.example.test")
        #expect(own.status == 301 && own.headers["location"] == "https://shop.example.test:\(https)/hello")
        #expect(try HTTPClient.request(port: fixture.port, "GET", "/hello", host: "evil.example").status == 404)
        #expect(try fixture.call("GET", "/hello").status == 200)
        // ACME's challenge path stays on HTTP (an unknown token is the app's business: no redirect).
        let challenge = try HTTPClient.request(port: fixture.port, "GET", "/.well-known/acme-challenge/abcdefghijklmnopqrstuvwxyz", host: "cats.gust.test")
        #expect(challenge.status != 301)

        // A name gustd has no certificate for gets the own one, which curl refuses for that name.
        let other = try TLSTools.curl("other.example.test", port: https, path: "/hello", ca: cert)
        #expect(other.status != 0, "\(other.output)")
    }

    /// With --https, the console is served over the same TLS (the same certificates by SNI), and its cookies are Secure.
    @Test(.scratchDirectory) func theConsoleIsServedOverTheSameTLSWithSecureCookies() throws {
        let root = ScratchDirectory.current
        let (cert, key) = try TLSTools.selfSigned(["gust.test", "*.gust.test"], in: root)
        let fixture = try PushFixture(gustdArguments: [
            "--domain", "gust.test", "--https", "127.0.0.1:0", "--tls-cert", cert.path, "--tls-key", key.path, "--no-acme",
            "--console", "127.0.0.1:0",
        ])
        let file = fixture.home.run.appendingPathComponent("gustd.console")
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: file.path) { usleep(100_000) }  // 10 s at most
        let address = try #require(try? String(contentsOf: file, encoding: .utf8), "gustd wrote the console's address")
        let port = try #require(Int(address.split(separator: ":").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""))
        let page = try TLSTools.curl("console.gust.test", port: port, path: "/login", ca: cert, extra: ["-i"])
        #expect(page.status == 0 && page.stdout.hasSuffix("200"), "\(page.output)")
        let cookie = page.stdout.split(separator: "\r\n").first { $0.lowercased().hasPrefix("set-cookie:") }
        #expect(cookie?.contains("; Secure") == true, "\(page.stdout.prefix(800))")
        // Plain HTTP on the console's port is no longer spoken.
        #expect((try? HTTPClient.request(port: port, "GET", "/login", timeout: 5))?.status != 200)
    }

    @Test(.scratchDirectory) func aKeyThatIsNotTheCertificatesStopsGustdAtStart() throws {
        let root = ScratchDirectory.current
        let (cert, _) = try TLSTools.selfSigned(["gust.test"], in: root, stem: "one")
        let (_, otherKey) = try TLSTools.selfSigned(["gust.test"], in: root, stem: "two")
        let home = GustHome(path: root.appendingPathComponent("home").path)
        let failure = #expect(throws: GustdFailure.self) {
            _ = try GustdProcess(home: home, arguments: ["--https", "127.0.0.1:0", "--tls-cert", cert.path, "--tls-key", otherKey.path, "--no-acme"])
        }
        #expect(failure?.log.contains("The private key does not belong to the certificate") == true, "\(failure?.log ?? "")")
    }
}
