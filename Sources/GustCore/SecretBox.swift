#if canImport(Glibc)
import Glibc
#endif
import Crypto
public import Foundation

/// Seals secret config values for the store: AES-GCM under a 256-bit key in
/// `GUST_HOME/secrets.key`, a file only gustd's user may read (made 0600 the
/// first time a secret is sealed). A sealed value reads
/// `gust-sealed:v1:BASE64(nonce ‖ ciphertext ‖ tag)`, so neither `gust.sqlite`
/// nor a copy of it shows a secret; values are opened only where they are used:
/// an instance's environment and a build's (and the masks of their output).
///
/// A value without the prefix is a plaintext secret from before sealing; the
/// store seals those when it opens (`Store.sealPlaintextSecrets`).
public struct SecretBox: Sendable {
    public static let prefix = "gust-sealed:v1:"
    public let keyFile: URL

    public init(home: GustHome) {
        keyFile = home.root.appendingPathComponent("secrets.key")
    }

    public static func isSealed(_ value: String) -> Bool { value.hasPrefix(prefix) }

    public func seal(_ value: String) throws -> String {
        let box = try AES.GCM.seal(Data(value.utf8), using: try key(creating: true))
        guard let combined = box.combined else { throw GustError.internal("AES-GCM gave no combined box.") }
        return Self.prefix + combined.base64EncodedString()
    }

    /// The plaintext of a sealed value (`name` and `app` only for the message); a plaintext value as it is.
    public func open(_ value: String, name: String, app: AppName) throws -> String {
        guard Self.isSealed(value) else { return value }
        let key: SymmetricKey
        do {
            key = try self.key(creating: false)
        } catch let error as GustError {
            throw GustError("Cannot decrypt the secret \(name) of \(app): \(error.message)", hint: error.hint)
        }
        guard let data = Data(base64Encoded: String(value.dropFirst(Self.prefix.count))),
            let box = try? AES.GCM.SealedBox(combined: data), let plain = try? AES.GCM.open(box, using: key)
        else {
            throw GustError(
                "Cannot decrypt the secret \(name) of \(app): it does not open with the key in \(keyFile.path) (another key, or the value was altered).",
                hint: "Put back the key file it was sealed with, or set the secret again: gust config set \(app) --secret \(name)=…"
            )
        }
        return String(decoding: plain, as: UTF8.self)
    }

    /// The key, made (0600, atomically: a rival maker's key wins and is read) when `creating` and absent.
    func key(creating: Bool) throws -> SymmetricKey {
        if let key = try read() { return key }
        guard creating else {
            throw GustError(
                "the key file \(keyFile.path) is missing.",
                hint: "Restore it from a backup of GUST_HOME, or set the secrets again with gust config set APP --secret NAME=…"
            )
        }
        let temporary = keyFile.path + ".\(getpid()).tmp"
        let fd = Glibc.open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw GustError("Cannot create \(temporary): \(String(cString: strerror(errno)))") }
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        defer { unlink(temporary) }
        guard written == bytes.count, synced == 0 else { throw GustError("Cannot write \(temporary): \(String(cString: strerror(errno)))") }
        // link(2) never replaces: if another process made the key meanwhile, theirs stays and is used.
        if link(temporary, keyFile.path) != 0 && errno != EEXIST {
            throw GustError("Cannot create \(keyFile.path): \(String(cString: strerror(errno)))")
        }
        guard let key = try read() else { throw GustError.internal("The key file \(keyFile.path) vanished after it was made.") }
        return key
    }

    private func read() throws -> SymmetricKey? {
        var info = stat()
        guard stat(keyFile.path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw GustError("the key file \(keyFile.path) cannot be read: \(String(cString: strerror(errno))).")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw GustError(
                "the key file \(keyFile.path) may be read by other users (mode \(String(info.st_mode & 0o777, radix: 8))).",
                hint: "Make it private to gustd's user: chmod 600 \(keyFile.path)"
            )
        }
        guard let data = FileManager.default.contents(atPath: keyFile.path) else {
            throw GustError("the key file \(keyFile.path) cannot be read by this user.", hint: "Run gust as the user gustd runs as.")
        }
        guard data.count == 32 else { throw GustError("the key file \(keyFile.path) holds \(data.count) bytes, not a 256-bit key.") }
        return SymmetricKey(data: data)
    }
}
