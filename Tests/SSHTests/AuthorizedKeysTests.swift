import Foundation
import GustCore
import GustTesting
import Testing

/// `GUST_HOME/ssh/authorized_keys` as sshd reads it.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct AuthorizedKeysTests {
    @Test(.scratchDirectory) func tenConcurrentAddsLeaveTenLinesSSHDAcceptsAndForeignLinesUntouched() throws {
        let fixture = try SSHFixture()
        // An admin's own key, written by hand before Gust ever touched the file.
        let own = try fixture.keyPair("own")
        let foreign = "no-pty " + (try String(contentsOf: own.publicKey, encoding: .utf8)).trimmingCharacters(in: .newlines)
        try (foreign + "\n").write(to: fixture.home.authorizedKeys, atomically: true, encoding: .utf8)

        let pairs = try (0..<10).map { try fixture.keyPair("k\($0)") }
        let processes = try pairs.enumerated().map { index, pair in
            try ChildProcess(
                GustBinaries.gust, ["keys", "add", "k\(index)", pair.publicKey.path, "--admin", "--home", fixture.home.path],
                standardError: STDERR_FILENO
            )
        }
        for process in processes {
            var ended = process.wait(upTo: 30)  // each at most
            if ended == nil {
                process.send(SIGKILL)
                ended = process.wait(upTo: 10)
            }
            #expect(ended == .exited(0))
        }

        let text = try String(contentsOf: fixture.home.authorizedKeys, encoding: .utf8)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.first == foreign)
        #expect(lines.filter { $0 == AuthorizedKeys.beginMarker }.count == 1)
        #expect(lines.filter { $0 == AuthorizedKeys.endMarker }.count == 1)
        let gustLines = lines.filter { $0.hasPrefix("command=") }
        #expect(gustLines.count == 10)
        for (index, pair) in pairs.enumerated() {
            let key = try String(contentsOf: pair.publicKey, encoding: .utf8).split(separator: " ")[1]
            let fingerprint = try pair.fingerprint()
            #expect(gustLines.filter {
                $0.contains(" --home ") && $0.contains(" ssh-command k\(index) --fingerprint \(fingerprint)\",restrict ") && $0.hasSuffix(" \(key)")
            }.count == 1)
            #expect(try fixture.ssh("help", as: pair).stdout.contains("key 'k\(index)'"))
        }
        // No temporary file is left behind, and the file is the owner's alone.
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.home.ssh.path) == ["authorized_keys"])
        let mode = try FileManager.default.attributesOfItem(atPath: fixture.home.authorizedKeys.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        // Removing keys keeps the admin's line; the admin's line still logs in, past Gust.
        #expect(try fixture.gust(["keys", "remove", "k3"]).status == 0)
        #expect(try fixture.ssh("help", as: pairs[3]).status != 0)
        let after = try String(contentsOf: fixture.home.authorizedKeys, encoding: .utf8)
        #expect(after.hasPrefix(foreign + "\n"))
        #expect(after.split(separator: "\n").filter { $0.hasPrefix("command=") }.count == 9)
        let direct = try fixture.ssh("echo own-key", as: own)
        #expect(direct.stdout == "own-key\n", "\(direct.output)")
    }

    @Test(.scratchDirectory) func badInputIsRefusedWithoutEchoingIt() throws {
        let fixture = try SSHFixture()
        let pair = try fixture.keyPair("alice")
        let secret = try String(contentsOf: pair.privateKey, encoding: .utf8)
        let privateKey = try fixture.gust(["keys", "add", "alice", "-"], input: secret)
        #expect(privateKey.status != 0)
        #expect(privateKey.stderr.contains("PRIVATE key"))
        let body = secret.split(separator: "\n")[1]
        #expect(!privateKey.output.contains(body))

        let weak = try fixture.keyPair("weak", type: "rsa", bits: 1024)
        let rsa = try fixture.gust(["keys", "add", "weak", weak.publicKey.path])
        #expect(rsa.status != 0)
        #expect(rsa.stderr.contains("1024 bits"))

        try fixture.addKey("alice", pair, ["--admin"])
        #expect(try fixture.gust(["keys", "add", "alice", pair.publicKey.path, "--admin"]).stdout.contains("nothing changed"))
        let twice = try fixture.gust(["keys", "add", "alice2", pair.publicKey.path])
        #expect(twice.status != 0)
        #expect(twice.stderr.contains("already added as 'alice'"))
        let badName = try fixture.gust(["keys", "add", "-x", pair.publicKey.path])
        #expect(badName.status != 0)
        let upper = try fixture.gust(["keys", "add", "Alice", pair.publicKey.path])
        #expect(upper.stderr.contains("not a valid key name"))
        #expect(!FileManager.default.fileExists(atPath: fixture.home.ssh.appendingPathComponent("authorized_keys.tmp").path))

        let byFingerprint = try fixture.gust(["keys", "remove", "--fingerprint", try pair.fingerprint()])
        #expect(byFingerprint.status == 0, "\(byFingerprint.output)")
        let left = try JSONSerialization.jsonObject(with: Data(try fixture.gust(["keys", "list", "--json"]).stdout.utf8)) as? [Any]
        #expect(left?.isEmpty == true)
    }
}
