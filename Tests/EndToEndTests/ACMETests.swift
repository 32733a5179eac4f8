import Foundation
import GustCore
import GustTesting
import Synchronization
import Testing

/// ACME against Debian's pebble on loopback, validation on: `gust domains add`
/// gets a certificate by HTTP-01 answered by gustd itself, curl trusts it
/// through pebble's root, a forced renewal swaps it in while requests keep
/// succeeding, a restarted gustd serves it from disk, and pebble being down is
/// shown in `gust domains list` while the app keeps answering over HTTP.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct ACMETests {
    static func domains(_ home: GustHome) throws -> [String: [String: Any]] {
        let listed = try GustBinaries.gust(home, ["domains", "list", "--json"])
        let rows = (try? JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]]) ?? []
        return Dictionary(uniqueKeysWithValues: rows.compactMap { row in (row["domain"] as? String).map { ($0, row) } })
    }

    /// Polls `gust domains list` (bounded) until `name`'s row satisfies `done`.
    static func waitFor(_ home: GustHome, _ name: String, seconds: Int = 90, _ done: ([String: Any]) -> Bool) throws -> [String: Any]? {
        for _ in 0..<(seconds * 4) {
            if let row = try domains(home)[name], done(row) { return row }
            usleep(250_000)
        }
        return try domains(home)[name]
    }

    @Test(.scratchDirectory) func pebbleIssuesRenewsWithoutAFailedRequestAndAFailureIsShown() throws {
        let root = ScratchDirectory.current
        // pebble checks HTTP-01 on one fixed port: gustd's HTTP port is chosen first.
        let httpPort = try LoopbackPort.free()
        let pebble = try Pebble(in: root, gustdHTTPPort: httpPort)
        let fixture = try PushFixture(gustdArguments: [
            "--http", "127.0.0.1:\(httpPort)", "--https", "127.0.0.1:0", "--acme-directory", pebble.directoryURL,
            "--acme-ca-bundle", pebble.apiCertificate.path, "--acme-email", "admin@example.com",
        ])
        let gustd = try #require(fixture.gustd)
        try HTTPSTests.pushed(fixture)
        var https = try TLSTools.httpsPort(fixture.home)

        let added = try GustBinaries.gust(fixture.home, ["domains", "add", "cats", "shop.example.com"])
        #expect(added.status == 0, "\(added.output)")
        let issued = try Self.waitFor(fixture.home, "shop.example.com") { $0["status"] as? String != "pending" }
        #expect(issued?["status"] as? String == "issued", "\(issued ?? [:])\n\(gustd.logText.suffix(3000))\n\(pebble.output.suffix(3000))")
        let pebbleRoot = try pebble.root()
        let answer = try TLSTools.curl("shop.example.com", port: https, path: "/hello", ca: pebbleRoot)
        #expect(answer.stdout == "hello from cats\n\n200", "\(answer.output)")
        let files = fixture.home.tls.appendingPathComponent("certificates/shop.example.com")
        for file in ["key.pem", "fullchain.pem"] {
            let mode = try FileManager.default.attributesOfItem(atPath: files.appendingPathComponent(file).path)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(file): \(String(mode ?? 0, radix: 8))")
        }

        // A forced renewal: new connections keep succeeding while the certificate is replaced.
        let first = try #require(try TLSTools.servedSerial("shop.example.com", port: https))
        let loop = RequestLoop(name: "shop.example.com", port: https, ca: pebbleRoot)
        loop.start()
        let renew = try GustBinaries.gust(fixture.home, ["domains", "renew", "cats", "shop.example.com"])
        #expect(renew.status == 0, "\(renew.output)")
        var second = first
        for _ in 0..<180 where second == first {
            usleep(500_000)
            second = try TLSTools.servedSerial("shop.example.com", port: https) ?? first
        }
        usleep(500_000)
        let (succeeded, failed) = loop.stop()
        #expect(second != first, "the certificate was not replaced\n\(gustd.logText.suffix(3000))")
        #expect(failed.isEmpty, "\(failed.count) of \(succeeded + failed.count) requests failed during the renewal: \(failed.prefix(3))")
        #expect(succeeded > 0)
        let renewed = try Self.domains(fixture.home)["shop.example.com"]
        #expect((renewed?["serial"] as? String).map { $0.uppercased().hasSuffix(second.uppercased().drop { $0 == "0" }) } == true, "\(renewed ?? [:]) vs \(second)")

        // pebble down: a new domain's issuance fails, is shown and logged; the app still answers over HTTP, gustd runs on.
        pebble.stop()
        #expect(try GustBinaries.gust(fixture.home, ["domains", "add", "cats", "down.example.com"]).status == 0)
        let failure = try Self.waitFor(fixture.home, "down.example.com", seconds: 60) { $0["status"] as? String != "pending" }
        #expect(failure?["status"] as? String == "failed", "\(failure ?? [:])")
        #expect((failure?["error"] as? String)?.isEmpty == false)
        let table = try GustBinaries.gust(fixture.home, ["domains", "list", "cats"])
        #expect(table.stdout.contains("down.example.com") && table.stdout.contains("failed"), "\(table.stdout)")
        #expect(gustd.logText.contains("no certificate for down.example.com"))
        let overHTTP = try HTTPClient.request(port: httpPort, "GET", "/hello", host: "down.example.com")
        #expect(overHTTP.status == 200 && overHTTP.text == "hello from cats\n")

        // Restarted with pebble still down, gustd serves the renewed certificate from GUST_HOME.
        gustd.stop()
        try gustd.start()
        https = try TLSTools.httpsPort(fixture.home)
        #expect(try TLSTools.servedSerial("shop.example.com", port: https) == second)
        #expect(try TLSTools.curl("shop.example.com", port: https, path: "/hello", ca: pebbleRoot).stdout.hasSuffix("200"))
    }
}

/// Requests on new connections (a curl each) on a thread of its own, until stopped: what a renewal must not break.
final class RequestLoop: @unchecked Sendable {
    private let name: String, port: Int, ca: URL
    private let state = Mutex<(running: Bool, succeeded: Int, failed: [String])>((true, 0, []))
    private let done = DispatchSemaphore(value: 0)

    init(name: String, port: Int, ca: URL) {
        (self.name, self.port, self.ca) = (name, port, ca)
    }

    func start() {
        let thread = Thread { [self] in
            while state.withLock({ $0.running }) {
                let result = try? TLSTools.curl(name, port: port, path: "/hello", ca: ca)
                let ok = result?.status == 0 && result?.stdout.hasSuffix("\n200") == true
                state.withLock { ok ? ($0.succeeded += 1) : $0.failed.append(result?.output ?? "curl did not run") }
            }
            done.signal()
        }
        thread.start()
    }

    func stop() -> (succeeded: Int, failed: [String]) {
        state.withLock { $0.running = false }
        _ = done.wait(timeout: .now() + 30)
        return state.withLock { ($0.succeeded, $0.failed) }
    }
}
