import Foundation
import GustCore
import GustTesting
import Testing

@Suite struct TokenAndConfigTests {
    func store() throws -> (Store, AppName) {
        let store = try Store(home: GustHome(path: ScratchDirectory.current.path))
        let app = try AppName("cats")
        _ = try store.createApp(app)
        return (store, app)
    }

    /// Every line an instance logs is searched for each of its app's secrets, and every start
    /// puts every var into an environment: with no bound, a key scoped to the app set 50,000
    /// secrets and kept two of gustd's threads per instance busy masking. Bounded as Heroku bounds
    /// an app's config (32 KB): at most `ConfigVar.maxCount` vars and `maxBytes` of names and values.
    @Test(.scratchDirectory) func anAppsConfigIsBoundedInCountAndSize() throws {
        let (store, app) = try store()
        let many = Dictionary(uniqueKeysWithValues: (0..<ConfigVar.maxCount).map { ("VAR_\($0)", "x") })
        try store.setConfig(app, many, secret: false)
        do {
            try store.setConfig(app, ["ONE_MORE": "long enough secret"], secret: true)
            Issue.record("a var past the count was set")
        } catch let error as GustError {
            #expect(error.message.contains("at most \(ConfigVar.maxCount) config vars"), "\(error.message)")
        }
        try store.setConfig(app, ["VAR_0": "replaced"], secret: false)  // a var set again is no new one
        #expect(try store.unsetConfig(app, Array(many.keys)).count == ConfigVar.maxCount)

        let big = String(repeating: "v", count: ConfigVar.maxBytes / 2)
        try store.setConfig(app, ["FIRST_HALF": big], secret: true)
        #expect(throws: GustError.self) { try store.setConfig(app, ["SECOND_HALF": big], secret: false) }
        try store.setConfig(app, ["FIRST_HALF": "small now, and secret"], secret: true)
        try store.setConfig(app, ["SECOND_HALF": big], secret: false)
        #expect(try store.openedConfig(app)["SECOND_HALF"] == big)
    }

    /// Tokens are rows in the store every app shares, and the app's page lists them all: an app has
    /// at most `AppToken.maxActive` tokens neither revoked nor expired, each described in at most
    /// 200 characters (the console's bound, now the store's), and `gust call`'s own token of a
    /// moment is deleted after the call rather than kept as a revoked row.
    @Test(.scratchDirectory) func anAppsTokensAreBoundedInNumberAndDescription() throws {
        let (store, app) = try store()
        #expect(throws: GustError.self) { try store.createToken(app, description: String(repeating: "d", count: 201), expiresAt: nil) }
        var made: [AppToken] = []
        for _ in 0..<AppToken.maxActive { made.append(try store.createToken(app, description: "", expiresAt: nil).token) }
        let error = #expect(throws: GustError.self) { try store.createToken(app, description: "", expiresAt: nil) }
        #expect(error?.message.contains("\(AppToken.maxActive) active tokens") == true, "\(String(describing: error))")
        try store.revokeToken(app, id: made[0].id)
        let call = try store.createToken(app, description: "gust call", expiresAt: Date().addingTimeInterval(120))
        try store.deleteToken(app, id: call.token.id)
        #expect(try store.tokens(app).count == AppToken.maxActive, "the revoked one stays listed, the deleted one is gone")
        #expect(try !store.verifyToken(app, secret: call.secret))
    }

    @Test(.scratchDirectory) func aTokenIsValidUntilRevokedAndOnlyItsHashIsStored() throws {
        let (store, app) = try store()
        let (token, secret) = try store.createToken(app, description: "ci", expiresAt: nil)
        #expect(try store.verifyToken(app, secret: secret))
        #expect(try !store.verifyToken(app, secret: secret + "x"))
        #expect(try !store.verifyToken(try AppName("dogs"), secret: secret))
        let stored = try store.db.query("SELECT hash FROM tokens").compactMap { $0.string("hash") }
        #expect(stored == [Store.tokenHash(secret)])
        #expect(!stored.contains(secret))
        #expect(try store.tokens(app).first?.lastUsedAt != nil)
        try store.revokeToken(app, id: token.id)
        #expect(try !store.verifyToken(app, secret: secret))
        #expect(throws: GustError.self) { try store.revokeToken(app, id: token.id) }
    }

    /// A private app's every call verifies its token: the check records the token's use, but a
    /// write on every call would serialise calls on SQLite's one writer, so the use is written at
    /// most once a minute (what `gust tokens list` shows as LAST USED). Revocation still reads
    /// the row on every call, so it takes effect at once.
    @Test(.scratchDirectory) func aTokensUseIsWrittenAtMostOnceAMinute() throws {
        let (store, app) = try store()
        let (token, secret) = try store.createToken(app, description: "ci", expiresAt: nil)
        let first = Date(timeIntervalSince1970: 2_000_000_000)
        #expect(try store.verifyToken(app, secret: secret, now: first))
        #expect(try store.verifyToken(app, secret: secret, now: first + 59))
        #expect(try store.tokens(app).first?.lastUsedAt == first)
        #expect(try store.verifyToken(app, secret: secret, now: first + 61))
        #expect(try store.tokens(app).first?.lastUsedAt == first + 61)
        try store.revokeToken(app, id: token.id)
        #expect(try !store.verifyToken(app, secret: secret, now: first + 62))

        let (admin, adminSecret) = try store.createConsoleToken(apps: nil, description: "me", expiresAt: nil)
        #expect(try store.verifyConsoleToken(secret: adminSecret, now: first) != nil)
        #expect(try store.verifyConsoleToken(secret: adminSecret, now: first + 30) != nil)
        #expect(try store.consoleToken(id: admin.id)?.lastUsedAt == first)
        #expect(try store.verifyConsoleToken(secret: adminSecret, now: first + 90) != nil)
        #expect(try store.consoleToken(id: admin.id)?.lastUsedAt == first + 90)
    }

    /// Stores hold tokens by this hash: lowercase hex of SHA-256, whatever computes it.
    @Test func aTokensHashIsTheLowercaseHexOfItsSHA256() {
        #expect(Store.tokenHash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Store.tokenHash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test(.scratchDirectory) func anExpiredTokenIsInvalid() throws {
        let (store, app) = try store()
        let (_, secret) = try store.createToken(app, description: "", expiresAt: Date().addingTimeInterval(60))
        #expect(try store.verifyToken(app, secret: secret))
        #expect(try !store.verifyToken(app, secret: secret, now: Date().addingTimeInterval(120)))
    }

    @Test func lifetimesAreReadInTheirUnits() throws {
        #expect(try AppToken.lifetime("90d") == 90 * 86_400)
        #expect(try AppToken.lifetime("1.5h") == 5400)
        #expect(try AppToken.lifetime("2w") == 14 * 86_400)
        #expect(try AppToken.lifetime("3660d") == AppToken.longestLifetime)
    }

    /// The web console passes its form's text here: `inf` or `1e300` must not become a date
    /// no one can print, and zero says why it is refused.
    @Test(arguments: [
        ("infd", "is not a duration"), ("nand", "is not a duration"), ("1e300d", "is not a duration"), ("-1d", "is not a duration"),
        ("d", "is not a duration"), ("90", "is not a duration"), ("0d", "is no time at all"), ("0.0h", "is no time at all"),
        ("3661d", "at most 3660d"), ("99999999999999999999w", "at most 3660d"),
    ])
    func badLifetimesSayWhatIsWrong(_ text: String, _ saying: String) {
        do {
            let seconds = try AppToken.lifetime(text)
            Issue.record("\(text) was read as \(seconds) s")
        } catch {
            #expect("\(error)".contains(saying), "\(text): \(error)")
        }
    }

    @Test(.scratchDirectory) func secretConfigIsMaskedInReleasesAndText() throws {
        let (store, app) = try store()
        try store.setConfig(app, ["GREETING": "meow", "API_KEY": "s3cr3t-value"], secret: false)
        try store.setConfig(app, ["API_KEY": "s3cr3t-value"], secret: true)
        #expect(try store.secretNames(app) == ["API_KEY"])
        let release = try store.recordRelease(app, NewRelease(
            status: .built, description: "Set", config: try store.config(app), secretNames: try store.secretNames(app)))
        #expect(release.config["API_KEY"]?.hasPrefix(SecretBox.prefix) == true, "stored sealed (SecretsAtRestTests)")
        #expect(try release.openedConfig(home: store.home)["API_KEY"] == "s3cr3t-value")
        #expect(release.displayConfig == ["API_KEY": ConfigVar.mask, "GREETING": "meow"])
        #expect("key is s3cr3t-value".maskingSecrets(try store.secretValues(app)) == "key is \(ConfigVar.mask)")
        #expect(try store.unsetConfig(app, ["API_KEY", "NOPE"]) == ["API_KEY"])
        #expect(throws: GustError.self) { try store.setConfig(app, ["1BAD": "x"], secret: false) }
    }
}
