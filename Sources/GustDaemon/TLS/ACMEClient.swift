import AsyncHTTPClient
import Foundation
import GustCore
import Logging
import NIOCore
import NIOHTTP1
import SwiftASN1
import X509

/// A client of an ACME certificate authority (RFC 8555: Let's Encrypt, or
/// pebble in the tests) that gets one certificate for one name by the HTTP-01
/// challenge, which `ChallengeResponder` answers on gustd's HTTP port.
///
/// One order at a time per client (the actor serialises them): an account
/// (made, or found again, with the account key), an order, its authorizations,
/// the challenge, a CSR for a fresh P-256 key, and the chain in PEM. Every
/// exchange has a deadline and every poll a bound, so a CA that hangs ends as
/// an error, never as a stuck gustd.
actor ACMEClient {
    let directoryURL: String
    let email: String?
    private let jws: JWS
    private let http: HTTPClient
    private var directory: Directory?
    private var nonce: String?
    /// The account's URL (the `kid` of every request after the first).
    private var account: String?

    private struct Directory {
        var newNonce: String
        var newAccount: String
        var newOrder: String
    }

    init(directoryURL: String, email: String?, accountKey: P256Key, http: HTTPClient) {
        self.directoryURL = directoryURL
        self.email = email
        jws = JWS(key: accountKey)
        self.http = http
    }

    /// A certificate chain (PEM) for `domain` and the key it was issued for.
    func issue(_ domain: DomainName, challenges: ChallengeResponder, logger: Logger) async throws -> (chainPEM: String, key: P256Key) {
        try await ensureAccount()
        let created = try await post(try endpoints().newOrder, json: ["identifiers": [["type": "dns", "value": domain.rawValue]]])
        guard let orderURL = created.header("Location") else { throw ACMEError("The CA made an order without saying where it is (no Location).") }
        var order = try created.object()
        let authorizations = order["authorizations"] as? [String] ?? []
        for authorization in authorizations {
            try await authorize(authorization, domain: domain, challenges: challenges, logger: logger)
        }
        guard let finalize = order["finalize"] as? String else { throw ACMEError("The CA's order has no finalize URL.") }
        let key = P256Key()
        let csr = try Self.csr(for: domain, key: key)
        order = try await post(finalize, json: ["csr": Base64URL.encode(csr)]).object()
        order = try await poll(orderURL, initial: order, until: { ($0["status"] as? String) != "processing" && ($0["status"] as? String) != "ready" && ($0["status"] as? String) != "pending" })
        guard order["status"] as? String == "valid", let certificateURL = order["certificate"] as? String else {
            throw ACMEError("The CA did not issue the certificate: order \(order["status"] as? String ?? "?")\(Self.detail(order["error"]))")
        }
        let chain = try await post(certificateURL, json: nil, accept: "application/pem-certificate-chain")
        let pem = String(decoding: chain.body, as: UTF8.self)
        guard pem.contains("-----BEGIN CERTIFICATE-----") else { throw ACMEError("The CA's certificate is not PEM.") }
        return (pem, key)
    }

    private func authorize(_ url: String, domain: DomainName, challenges: ChallengeResponder, logger: Logger) async throws {
        let authorization = try await post(url, json: nil).object()
        if authorization["status"] as? String == "valid" { return }
        guard let offered = authorization["challenges"] as? [[String: Any]],
            let challenge = offered.first(where: { $0["type"] as? String == "http-01" }),
            let token = challenge["token"] as? String, let challengeURL = challenge["url"] as? String
        else { throw ACMEError("The CA offers no http-01 challenge for \(domain).") }
        guard ChallengeResponder.isToken(token) else { throw ACMEError("The CA's challenge token is malformed.") }
        challenges.expect(token: token, for: domain, keyAuthorization: "\(token).\(jws.thumbprint)")
        defer { challenges.forget(token: token) }
        logger.info("ACME: answering the http-01 challenge for \(domain)")
        _ = try await post(challengeURL, json: [:])
        let settled = try await poll(url, initial: nil, until: { ($0["status"] as? String) != "pending" && ($0["status"] as? String) != "processing" })
        guard settled["status"] as? String == "valid" else {
            let failed = (settled["challenges"] as? [[String: Any]])?.first { $0["type"] as? String == "http-01" }
            throw ACMEError("The CA could not validate \(domain) over http-01\(Self.detail(failed?["error"]))")
        }
    }

    /// POST-as-GET on `url` until `done` holds, a second apart (or the CA's Retry-After, up to 10 s), at most 90 times.
    private func poll(_ url: String, initial: [String: Any]?, until done: ([String: Any]) -> Bool) async throws -> [String: Any] {
        if let initial, done(initial) { return initial }
        for _ in 0..<90 {
            let response = try await post(url, json: nil)
            let object = try response.object()
            if done(object) { return object }
            let wait = response.header("Retry-After").flatMap(Int.init).map { min(max($0, 1), 10) } ?? 1
            try await Task.sleep(for: .seconds(wait))
        }
        throw ACMEError("The CA did not finish in time (polled \(url) 90 times).")
    }

    // MARK: Account and directory

    private func endpoints() throws -> Directory {
        guard let directory else { throw ACMEError("No ACME directory yet.") }
        return directory
    }

    private func ensureAccount() async throws {
        if directory == nil {
            let response = try await send("GET", directoryURL, body: nil)
            guard response.status == 200 else { throw ACMEError("The ACME directory \(directoryURL) answered \(response.status).") }
            let object = try response.object()
            guard let newNonce = object["newNonce"] as? String, let newAccount = object["newAccount"] as? String,
                let newOrder = object["newOrder"] as? String
            else { throw ACMEError("\(directoryURL) is not an ACME directory.") }
            directory = Directory(newNonce: newNonce, newAccount: newAccount, newOrder: newOrder)
        }
        guard account == nil else { return }
        var payload: [String: Any] = ["termsOfServiceAgreed": true]
        if let email { payload["contact"] = ["mailto:\(email)"] }
        let response = try await post(try endpoints().newAccount, json: payload, asAccount: false)
        guard let location = response.header("Location") else { throw ACMEError("The CA made no account (no Location).") }
        account = location
    }

    // MARK: Signed requests

    struct Response {
        var status: Int
        var headers: [(String, String)]
        var body: [UInt8]

        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }

        func object() throws -> [String: Any] {
            guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
                throw ACMEError("The CA answered \(status) with something that is not a JSON object.")
            }
            return object
        }
    }

    /// A JWS-signed POST (`json` nil: POST-as-GET); a `badNonce` is retried with the fresh nonce it carries.
    private func post(_ url: String, json: [String: Any]?, asAccount: Bool = true, accept: String? = nil) async throws -> Response {
        let payload = try json.map { try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys, .withoutEscapingSlashes]) }
        for _ in 0..<3 {
            let nonce = try await freshNonce()
            let body = try jws.sign(url: url, nonce: nonce, kid: asAccount ? account : nil, payload: payload)
            let response = try await send("POST", url, body: body, accept: accept)
            if response.status < 400 { return response }
            let problem = (try? response.object()) ?? [:]
            if problem["type"] as? String == "urn:ietf:params:acme:error:badNonce" { continue }
            throw ACMEError("The CA refused (\(response.status))\(Self.detail(problem))")
        }
        throw ACMEError("The CA refused three nonces in a row.")
    }

    private func freshNonce() async throws -> String {
        if let nonce {
            self.nonce = nil
            return nonce
        }
        let response = try await send("HEAD", try endpoints().newNonce, body: nil)
        guard let fresh = response.header("Replay-Nonce") else { throw ACMEError("The CA gave no nonce.") }
        nonce = nil
        return fresh
    }

    private func send(_ method: String, _ url: String, body: Data?, accept: String? = nil) async throws -> Response {
        var request = HTTPClientRequest(url: url)
        request.method = .init(rawValue: method)
        request.headers.add(name: "User-Agent", value: "gustd")
        if let accept { request.headers.add(name: "Accept", value: accept) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/jose+json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response: HTTPClientResponse
        var collected: ByteBuffer
        do {
            response = try await http.execute(request, timeout: .seconds(30))
            collected = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw ACMEError("Cannot reach the CA at \(url): \(error)")
        }
        let headers = response.headers.map { ($0.name, $0.value) }
        if let fresh = headers.first(where: { $0.0.lowercased() == "replay-nonce" })?.1 { nonce = fresh }
        return Response(status: Int(response.status.code), headers: headers, body: collected.readBytes(length: collected.readableBytes) ?? [])
    }

    /// `: detail` of an RFC 7807 problem, if there is one.
    private static func detail(_ problem: Any?) -> String {
        guard let problem = problem as? [String: Any] else { return "" }
        let type = (problem["type"] as? String).map { $0.replacingOccurrences(of: "urn:ietf:params:acme:error:", with: "") }
        let detail = problem["detail"] as? String
        return ": " + [type, detail].compactMap { $0 }.joined(separator: ": ")
    }

    /// A DER certificate signing request for `domain` (its only name, as the common name and the SAN).
    static func csr(for domain: DomainName, key: P256Key) throws -> [UInt8] {
        let extensions = try Certificate.Extensions { SubjectAlternativeNames([.dnsName(domain.rawValue)]) }
        let request = try CertificateSigningRequest(
            version: .v1, subject: try DistinguishedName { CommonName(domain.rawValue) }, privateKey: key.certificateKey,
            attributes: CertificateSigningRequest.Attributes([try .init(ExtensionRequest(extensions: extensions))]),
            signatureAlgorithm: .ecdsaWithSHA256
        )
        var serializer = DER.Serializer()
        try serializer.serialize(request)
        return serializer.serializedBytes
    }
}

/// Why an issuance failed, in words for `gust domains list`.
struct ACMEError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
