import Foundation
import GustCore
import GustTesting
import Testing

/// Keys made by the real `ssh-keygen`, parsed by `SSHPublicKey`.
@Suite(.timeLimit(.minutes(2)))
struct SSHPublicKeyTests {
    /// Makes a key pair and returns (public key text, private key text, `ssh-keygen -lf` fingerprint).
    func keygen(_ type: String, bits: Int? = nil) throws -> (public: String, private: String, fingerprint: String) {
        let file = ScratchDirectory.current.appendingPathComponent("\(type)-\(bits ?? 0)")
        let made = try Command.run("ssh-keygen", ["-q", "-t", type, "-N", "", "-C", "me@laptop", "-f", file.path] + (bits.map { ["-b", String($0)] } ?? []))
        #expect(made.status == 0, "\(made.output)")
        let listed = try Command.run("ssh-keygen", ["-lf", file.path + ".pub"]).stdout.split(separator: " ")
        return (try String(contentsOf: URL(fileURLWithPath: file.path + ".pub"), encoding: .utf8),
                try String(contentsOf: file, encoding: .utf8), String(listed[1]))
    }

    @Test(.scratchDirectory, arguments: [
        ("ed25519", nil, "ssh-ed25519", 256), ("ecdsa", 256, "ecdsa-sha2-nistp256", 256), ("ecdsa", 384, "ecdsa-sha2-nistp384", 384),
        ("ecdsa", 521, "ecdsa-sha2-nistp521", 521), ("rsa", 2048, "ssh-rsa", 2048), ("rsa", 4096, "ssh-rsa", 4096),
    ] as [(String, Int?, String, Int)])
    func supportedKeysParseWithSSHKeygensFingerprint(_ type: String, _ bits: Int?, _ name: String, _ size: Int) throws {
        let made = try keygen(type, bits: bits)
        let key = try SSHPublicKey(parsing: made.public)
        #expect(key.type == name)
        #expect(key.bits == size)
        #expect(key.comment == "me@laptop")
        #expect(key.fingerprint == made.fingerprint)
        #expect(made.public.hasPrefix(key.line + " "))
    }

    @Test(.scratchDirectory) func aPrivateKeyIsRefusedWithoutRepeatingIt() throws {
        for (type, bits) in [("ed25519", nil), ("rsa", 2048)] as [(String, Int?)] {
            let made = try keygen(type, bits: bits)
            let error = try #require(throws: GustError.self) { try SSHPublicKey(parsing: made.private) }
            #expect(error.message.contains("PRIVATE key"))
            let body = made.private.split(separator: "\n")[1]
            #expect(!error.description.contains(body))
        }
        // The PEM form of an RSA key, as older tools write it.
        let pem = try #require(throws: GustError.self) {
            try SSHPublicKey(parsing: "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n")
        }
        #expect(pem.message.contains("PRIVATE key"))
    }

    @Test(.scratchDirectory) func rsaUnder2048BitsIsRefused() throws {
        let made = try keygen("rsa", bits: 1024)
        let error = try #require(throws: GustError.self) { try SSHPublicKey(parsing: made.public) }
        #expect(error.message.contains("1024 bits"))
        #expect(error.message.contains("2048"))
    }

    @Test(.scratchDirectory) func whatIsNotAPublicKeyIsRefused() throws {
        let made = try keygen("ed25519")
        let fields = made.public.split(separator: " ")
        let ecdsa = try keygen("ecdsa", bits: 256).public.split(separator: " ")
        let cases = [
            "", "\n# only a comment\n", "hello world", "ssh-ed25519", "ssh-ed25519 not*base64",
            "ssh-dss \(fields[1])", "sk-ssh-ed25519@openssh.com \(fields[1])",
            // The label says one type, the blob holds another.
            "ssh-rsa \(fields[1])", "ssh-ed25519 \(ecdsa[1])",
            // A blob cut short, or with bytes after the key.
            "ssh-ed25519 \(Data(Data(base64Encoded: String(fields[1]))!.dropLast(4)).base64EncodedString())",
            "ssh-ed25519 \((Data(base64Encoded: String(fields[1]))! + Data([0, 0, 0, 1, 7])).base64EncodedString())",
            // Two keys at once, and an authorized_keys line with options.
            made.public + made.public, "command=\"x\" " + made.public,
        ]
        for text in cases {
            #expect(throws: GustError.self, "\(text)") { try SSHPublicKey(parsing: text) }
        }
        // Leading comments and blank lines around the one key are fine.
        #expect(try SSHPublicKey(parsing: "# laptop\n\n" + made.public + "\n").fingerprint == made.fingerprint)
    }

    @Test func keyNamesFollowTheRule() {
        for good in ["alice", "0ops", "ci.deploy", "bob_laptop-2", String(repeating: "a", count: 64)] {
            #expect(KeyName.isValid(good), "\(good)")
        }
        for bad in ["", "Alice", "-x", ".x", "_x", "a b", "a/b", "a\"b", "ü", String(repeating: "a", count: 65)] {
            #expect(!KeyName.isValid(bad), "\(bad)")
        }
    }
}
