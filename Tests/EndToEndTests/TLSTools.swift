import Foundation
import GustCore
import GustTesting

/// The real TLS tools the HTTPS tests drive: openssl makes ECDSA P-256
/// certificates, curl talks HTTPS by name (`--resolve` to loopback), and
/// `openssl s_client` tells which certificate a name is served.
enum TLSTools {
    /// A self-signed ECDSA P-256 certificate for `names` (the first also its CN), in `directory`.
    static func selfSigned(_ names: [String], in directory: URL, stem: String = "own") throws -> (cert: URL, key: URL) {
        let cert = directory.appendingPathComponent("\(stem).crt"), key = directory.appendingPathComponent("\(stem).key")
        let san = names.map { name in name.first!.isNumber ? "IP:\(name)" : "DNS:\(name)" }.joined(separator: ",")
        let made = try Command.run("openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-keyout", key.path, "-out", cert.path, "-subj", "/CN=\(names[0])", "-addext", "subjectAltName=\(san)",
        ], timeout: 30)
        guard made.status == 0 else { throw HTTPClientErrorText("openssl req failed: \(made.output)") }
        return (cert, key)
    }

    /// `curl` over HTTPS to `name:port` on loopback, trusting only `ca`; `extra` curl options.
    static func curl(_ name: String, port: Int, path: String = "/", ca: URL, extra: [String] = []) throws -> CommandResult {
        try Command.run("curl", [
            "-sS", "--max-time", "10", "--cacert", ca.path, "--resolve", "\(name):\(port):127.0.0.1",
            "-w", "\n%{http_code}", "https://\(name):\(port)\(path)",
        ] + extra, timeout: 20)
    }

    /// The serial (hex) of the leaf certificate served for `name` on `port`, as openssl reads it.
    static func servedSerial(_ name: String, port: Int) throws -> String? {
        let hello = try Command.run("openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", name], input: "", timeout: 20)
        let serial = try Command.run("openssl", ["x509", "-noout", "-serial"], input: hello.stdout, timeout: 20)
        return serial.stdout.split(separator: "=").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    /// The port gustd serves HTTPS on (GUST_HOME/run/gustd.https).
    static func httpsPort(_ home: GustHome) throws -> Int {
        let text = try String(contentsOf: home.run.appendingPathComponent("gustd.https"), encoding: .utf8)
        guard let port = Int(text.split(separator: ":").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") else {
            throw HTTPClientErrorText("gustd.https holds no port: \(text)")
        }
        return port
    }
}
