import Foundation
@testable import GustCore
import GustTesting
import Testing

/// Secret config values are sealed with AES-GCM in the store and open only with
/// the key file (issue 12, item 5).
@Suite struct SecretsAtRestTests {
    static let secret = "hunter2-very-secret-value"

    func store() throws -> (Store, AppName) {
        let store = try Store(home: GustHome(path: ScratchDirectory.current.path))
        let app = try AppName("cats")
        _ = try store.createApp(app)
        return (store, app)
    }

    /// Every byte SQLite keeps for the store: the file and its WAL.
    func storedBytes(_ home: GustHome) -> Data {
        ["", "-wal"].reduce(into: Data()) { $0.append(FileManager.default.contents(atPath: home.database.path + $1) ?? Data()) }
    }

    func release(_ store: Store, _ app: AppName) throws -> Release {
        try store.recordRelease(app, NewRelease(
            status: .built, commit: "abc", buildSeconds: 0, description: "test",
            config: try store.config(app), secretNames: try store.secretNames(app)
        ))
    }

    @Test(.scratchDirectory) func aSecretIsStoredSealedAndOpensOnlyForTheEnvironment() throws {
        let (store, app) = try store()
        try store.setConfig(app, ["API_KEY": Self.secret], secret: true)
        try store.setConfig(app, ["PLAIN": "visible-value"], secret: false)
        let release = try release(store, app)

        #expect(storedBytes(store.home).range(of: Data(Self.secret.utf8)) == nil, "gust.sqlite holds the secret in plaintext")
        #expect(storedBytes(store.home).range(of: Data("visible-value".utf8)) != nil, "plain config stays readable")
        #expect(try store.configVars(app).first { $0.name == "API_KEY" }?.value.hasPrefix(SecretBox.prefix) == true)
        #expect(release.config["API_KEY"]?.hasPrefix(SecretBox.prefix) == true)
        #expect(try release.openedConfig(home: store.home)["API_KEY"] == Self.secret)
        #expect(try store.openedConfig(app)["API_KEY"] == Self.secret)
        #expect(try store.secretValues(app) == [Self.secret])

        let key = try FileManager.default.attributesOfItem(atPath: SecretBox(home: store.home).keyFile.path)
        #expect((key[.posixPermissions] as? Int) == 0o600)
        #expect((key[.size] as? Int) == 32)
    }

    @Test(.scratchDirectory) func plaintextSecretsOfAnEarlierVersionAreSealedWhenTheStoreOpens() throws {
        let (store, app) = try store()
        try store.setConfig(app, ["API_KEY": Self.secret], secret: true)
        // As an earlier gust stored them: the value and a release's snapshot in plaintext, in a store
        // not yet marked as sealed.
        try store.db.run("DELETE FROM store_marks")
        try store.db.run("UPDATE config_vars SET value = ? WHERE name = 'API_KEY'", [.text(Self.secret)])
        _ = try store.recordRelease(app, NewRelease(
            status: .built, commit: "abc", buildSeconds: 0, description: "old", config: ["API_KEY": Self.secret], secretNames: ["API_KEY"]
        ))
        #expect(storedBytes(store.home).range(of: Data(Self.secret.utf8)) != nil)

        let reopened = try Store(home: store.home)
        #expect(storedBytes(store.home).range(of: Data(Self.secret.utf8)) == nil, "the migration left the secret's bytes in the file")
        let release = try #require(try reopened.release(app, version: 1))
        #expect(release.config["API_KEY"]?.hasPrefix(SecretBox.prefix) == true)
        #expect(try release.openedConfig(home: reopened.home)["API_KEY"] == Self.secret)
        #expect(try reopened.openedConfig(app)["API_KEY"] == Self.secret)
    }

    /// Every write seals, so a store is scanned for plaintext once: an open no longer reads and
    /// decodes every release's config (70 ms for each command and push with 3,000 releases).
    @Test(.scratchDirectory) func aStoreIsScannedForPlaintextOnce() throws {
        let (store, app) = try store()
        try store.setConfig(app, ["API_KEY": Self.secret], secret: true)
        #expect(try store.db.query("SELECT name FROM store_marks").compactMap { $0.string("name") } == [Store.sealedMark])
        // Plaintext that no Gust writes (a hand edit) stays as it is once the store is marked.
        try store.db.run("UPDATE config_vars SET value = ? WHERE name = 'API_KEY'", [.text(Self.secret)])
        _ = try Store(home: store.home)
        #expect(try store.db.query("SELECT value FROM config_vars").first?.string("value") == Self.secret)
    }

    @Test(.scratchDirectory) func aMissingOrWrongKeyIsAClearErrorNeverAnEmptySecret() throws {
        let (store, app) = try store()
        try store.setConfig(app, ["API_KEY": Self.secret], secret: true)
        let release = try release(store, app)
        let keyFile = SecretBox(home: store.home).keyFile

        try FileManager.default.removeItem(at: keyFile)
        let missing = #expect(throws: GustError.self) { try release.openedConfig(home: store.home) }
        #expect(missing?.message.contains("Cannot decrypt the secret API_KEY of cats") == true, "\(String(describing: missing))")
        #expect(missing?.message.contains("is missing") == true)
        #expect(!FileManager.default.fileExists(atPath: keyFile.path), "opening never makes a new key")

        let other = Data((0..<32).map { UInt8($0) })
        _ = FileManager.default.createFile(atPath: keyFile.path, contents: other, attributes: [.posixPermissions: 0o600])
        let wrong = #expect(throws: GustError.self) { try store.openedConfig(app) }
        #expect(wrong?.message.contains("does not open with the key") == true, "\(String(describing: wrong))")

        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: keyFile.path)
        let exposed = #expect(throws: GustError.self) { try store.openedConfig(app) }
        #expect(exposed?.hint?.contains("chmod 600") == true, "\(String(describing: exposed))")
    }
}
