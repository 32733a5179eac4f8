import Foundation
import GustTesting

/// Debian's pebble (an ACME test CA) on loopback with validation on, and
/// pebble-challtestsrv as its DNS, answering every A query with 127.0.0.1 (and
/// no AAAA), so that pebble's HTTP-01 check of any test name reaches gustd's
/// HTTP port (pebble's `httpPort`). Both are stopped by PID.
final class Pebble: @unchecked Sendable {
    let directory: URL
    let directoryURL: String
    /// The certificate of pebble's own HTTPS (directory and management API): gustd's `--acme-ca-bundle`.
    let apiCertificate: URL
    let managementPort: Int
    private var pebble: BackgroundCommand?
    private var dns: BackgroundCommand?
    private let config: URL
    private let dnsPort: Int

    init(in root: URL, gustdHTTPPort: Int) throws {
        directory = root.appendingPathComponent("pebble")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        (apiCertificate, _) = try TLSTools.selfSigned(["localhost", "127.0.0.1"], in: directory, stem: "pebble-api")
        let port = try LoopbackPort.free()
        managementPort = try LoopbackPort.free()
        dnsPort = try LoopbackPort.free()
        directoryURL = "https://127.0.0.1:\(port)/dir"
        config = directory.appendingPathComponent("pebble.json")
        let settings: [String: Any] = ["pebble": [
            "listenAddress": "127.0.0.1:\(port)", "managementListenAddress": "127.0.0.1:\(managementPort)",
            "certificate": apiCertificate.path, "privateKey": directory.appendingPathComponent("pebble-api.key").path,
            "httpPort": gustdHTTPPort, "tlsPort": try LoopbackPort.free(), "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        ]]
        try JSONSerialization.data(withJSONObject: settings).write(to: config)
        dns = try BackgroundCommand("/usr/bin/pebble-challtestsrv", [
            "-dns01", "127.0.0.1:\(dnsPort)", "-http01", "", "-https01", "", "-tlsalpn01", "",
            "-management", "127.0.0.1:\(try LoopbackPort.free())", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
        ], outputIn: directory)
        guard dns!.waitForOutput(upTo: 15, { $0.contains("Starting challenge servers") || $0.contains("Answering") || $0.contains("127.0.0.1:\(dnsPort)") }) else {
            throw HTTPClientErrorText("pebble-challtestsrv did not start: \(dns!.output)")
        }
        try start()
    }

    /// Starts pebble (again) and waits, bounded, until its directory answers.
    func start() throws {
        pebble = try BackgroundCommand("/usr/bin/pebble", ["-config", config.path, "-dnsserver", "127.0.0.1:\(dnsPort)"], outputIn: directory, environment: [
            // Validation stays on (no PEBBLE_VA_ALWAYS_VALID); no random sleeps or refused nonces, so the test is quick and fair.
            "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0",
        ])
        for _ in 0..<100 {
            if (try? Command.run("curl", ["-sS", "--max-time", "2", "--cacert", apiCertificate.path, directoryURL], timeout: 5))?.status == 0 { return }
            usleep(100_000)
        }
        throw HTTPClientErrorText("pebble did not answer at \(directoryURL): \(pebble?.output ?? "")")
    }

    func stop() { pebble?.stop() }

    /// The root pebble issues under (from its management API, `/roots/0`), for curl's --cacert.
    func root() throws -> URL {
        let file = directory.appendingPathComponent("pebble-root.pem")
        let fetched = try Command.run("curl", [
            "-sS", "--max-time", "5", "--cacert", apiCertificate.path, "-o", file.path, "https://127.0.0.1:\(managementPort)/roots/0",
        ], timeout: 10)
        guard fetched.status == 0 else { throw HTTPClientErrorText("Cannot fetch pebble's root: \(fetched.output)") }
        return file
    }

    var output: String { (pebble?.output ?? "") + (dns?.output ?? "") }

    deinit {
        pebble?.stop()
        dns?.stop()
    }
}
