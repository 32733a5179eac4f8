import Crypto
import Foundation
import GustCore
import Testing
import X509
import SwiftASN1

@testable import GustDaemon

/// The pieces of HTTPS and own domains that decide on attacker-chosen input:
/// the Host (routing and redirects), the ACME challenge path, and what gustd
/// sends its CA (a JWS it can verify, a CSR naming exactly the domain).
@Suite struct DomainRoutingTests {
    let shop = try! DomainName("shop.example.com")
    let cats = try! AppName("cats")

    @Test func anOwnDomainNamesItsAppAndNothingLikeIt() {
        let routes = DomainRoutes([shop: cats])
        let path = RequestPath(percentEncoded: "/hello")
        for host in ["shop.example.com", "SHOP.example.com:8443", "shop.example.com."] {
            #expect(AppAddress(host: host, path: path, domain: "localhost", custom: routes.app(for:))?.app == cats, "\(host)")
        }
        for host in ["shop.example.com.evil", "xshop.example.com", "evil.shop.example.com", "shop.example.com@evil", "example.com"] {
            #expect(AppAddress(host: host, path: path, domain: "localhost", custom: routes.app(for:)) == nil, "\(host)")
        }
        // APP.DOMAIN is decided first: an own domain never shadows an app's address.
        let shadow = DomainRoutes([try! DomainName("dogs.localhost"): cats])
        #expect(AppAddress(host: "dogs.localhost", path: path, domain: "localhost", custom: shadow.app(for:))?.app.rawValue == "dogs")
    }

    /// An app's own domain is its origin alone: another served app's `/apps/NAME/` there is nobody's.
    /// Not the domain's app's (it may have taken the host clients reach path addresses at, and must
    /// not get their calls), and not NAME's (its pages would run in the domain's origin, reading
    /// the domain's app's pages with its users' cookies).
    @Test func anOwnDomainNeverTakesAnotherServedAppsPathAddressNorServesIt() {
        let routes = DomainRoutes([try! DomainName("gust.example.com"): cats])
        let served: Set<String> = ["cats", "dogs"]
        func app(_ target: String) -> String? {
            AppAddress(host: "gust.example.com", path: RequestPath(percentEncoded: target), domain: "localhost",
                       custom: routes.app(for:), served: { served.contains($0.rawValue) })?.app.rawValue
        }
        #expect(app("/apps/dogs/_/functions/hello") == nil)
        #expect(app("/apps/dogs") == nil)
        #expect(app("/hello") == "cats")
        #expect(app("/apps/cats/x") == "cats", "its own name in the path: its own domain's, as APP.DOMAIN's is")
        #expect(app("/apps/ghost/x") == "cats", "not an app served here: the own domain's path")
        #expect(app("/apps/Not_A_Name/x") == "cats")
        let elsewhere = AppAddress(host: "127.0.0.1", path: RequestPath(percentEncoded: "/apps/dogs/a/b"), domain: "localhost",
                                   custom: routes.app(for:), served: { served.contains($0.rawValue) })
        #expect(elsewhere?.app.rawValue == "dogs" && elsewhere?.path.decoded == "/a/b", "at any other host, dogs' path address")
    }

    @Test func onlyPendingTokensAreAnsweredAndOnlyForTheirDomain() {
        let challenges = ChallengeResponder()
        let token = "abcdefghijklmnop_QRSTUV-0123456789"
        #expect(challenges.answer(path: "/.well-known/acme-challenge/\(token)", host: "shop.example.com") == nil)
        challenges.expect(token: token, for: shop, keyAuthorization: "\(token).thumb")
        #expect(challenges.answer(path: "/.well-known/acme-challenge/\(token)", host: "shop.example.com:80") == "\(token).thumb")
        #expect(challenges.answer(path: "/.well-known/acme-challenge/\(token)", host: "other.example.com") == nil)
        #expect(challenges.answer(path: "/.well-known/acme-challenge/\(token)", host: nil) == nil)
        #expect(challenges.answer(path: "/.well-known/acme-challenge/\(token)/x", host: "shop.example.com") == nil)
        #expect(challenges.answer(path: "/.well-known/acme-challenge/../\(token)", host: "shop.example.com") == nil)
        // A token that is not base64url is never stored, so never answered.
        let odd = "../../etc/passwd-0123456789"
        challenges.expect(token: odd, for: shop, keyAuthorization: "x")
        #expect(challenges.answer(path: "/.well-known/acme-challenge/\(odd)", host: "shop.example.com") == nil)
        challenges.forget(token: token)
        #expect(challenges.answer(path: "/.well-known/acme-challenge/\(token)", host: "shop.example.com") == nil)
    }

    @Test func redirectsGoOnlyToNamesGustdServes() {
        let redirect = HTTPSRedirect(port: 8443)
        let routes = DomainRoutes([shop: cats])
        func location(_ host: String, _ target: String) -> String? {
            let address = AppAddress(host: host, path: RequestPath(percentEncoded: target), domain: "gust.example", custom: routes.app(for:))
            return redirect.location(host: host, target: target, addressed: address, domain: "gust.example")
        }
        #expect(location("cats.gust.example:8080", "/a?b=1") == "https://cats.gust.example:8443/a?b=1")
        #expect(location("Shop.Example.com", "//evil.example/x") == "https://shop.example.com:8443//evil.example/x")
        #expect(location("evil.example", "/a") == nil)
        #expect(location("127.0.0.1:8080", "/apps/cats/a") == nil)
        #expect(location("cats.gust.example", "/.well-known/acme-challenge/abc") == nil)
        redirect.setPort(443)
        #expect(location("cats.gust.example", "/") == "https://cats.gust.example/")
    }

    @Test func retriesBackOffUpToSixHours() {
        #expect(CertificateManager.backoff(failures: 1) == .seconds(30))
        #expect(CertificateManager.backoff(failures: 2) == .seconds(60))
        #expect(CertificateManager.backoff(failures: 5) == .seconds(480))
        #expect(CertificateManager.backoff(failures: 40) == .seconds(6 * 3600))
    }

    @Test func theJWSVerifiesWithTheAccountKeyAndTheCSRNamesOnlyTheDomain() throws {
        let key = P256Key()
        let body = try JWS(key: key).sign(url: "https://ca.example/new-order", nonce: "n1", kid: nil, payload: Data("{}".utf8))
        let object = try #require(try JSONSerialization.jsonObject(with: body) as? [String: String])
        let decode = { (text: String) -> Data in
            var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
            return Data(base64Encoded: base64)!
        }
        let signature = try P256.Signing.ECDSASignature(rawRepresentation: decode(object["signature"]!))
        #expect(key.signing.publicKey.isValidSignature(signature, for: Data("\(object["protected"]!).\(object["payload"]!)".utf8)))
        let header = try #require(try JSONSerialization.jsonObject(with: decode(object["protected"]!)) as? [String: Any])
        #expect(header["alg"] as? String == "ES256" && header["nonce"] as? String == "n1" && header["url"] as? String == "https://ca.example/new-order")
        #expect((header["jwk"] as? [String: String])?["crv"] == "P-256")

        let der = try ACMEClient.csr(for: shop, key: key)
        let csr = try CertificateSigningRequest(derEncoded: der)
        #expect(csr.publicKey == key.publicKey)
        #expect(try csr.attributes.extensionRequest?.extensions.subjectAlternativeNames.map(Array.init) == [.dnsName("shop.example.com")])
    }

    @Test func sniChoosesTheIssuedCertificateElseTheFallback() throws {
        let sni = try SNICertificates(own: nil)
        #expect(sni.choose("shop.example.com") == nil)
        let issued = try ServedCertificate.placeholder()
        sni.install(issued, for: shop)
        #expect(sni.choose("SHOP.example.com")?.serial == issued.serial)
        #expect(sni.choose("other.example.com") == nil)
        #expect(sni.choose(nil) == nil)
        sni.remove(shop)
        #expect(sni.choose("shop.example.com") == nil)
    }
}
