import Foundation

/// One config var. Secret values are never printed back.
public struct ConfigVar: Sendable, Codable, Equatable {
    public var name: String
    public var value: String
    public var isSecret: Bool

    public static let mask = "••••••"

    /// Masking a short value in a log line gives it away (`th•••••• s••••••cr••••••t`
    /// for the secret `e`): secrets must be at least this long, and shorter values are
    /// never masked.
    public static let minimumSecretLength = 8

    /// The most config vars an app has, and the most bytes of their names and values together
    /// (Heroku's bound is 32 KB): every instance's environment holds them all, and every line an
    /// instance logs is searched for each secret among them.
    public static let maxCount = 500
    public static let maxBytes = 64 * 1024

    /// Names a config var cannot take: bash's read-only and special variables, which
    /// break every build that exports them ("UID: readonly variable"), and Gust's own.
    public static func reservation(of name: String) -> String? {
        if gustOwned.contains(name) { return "Gust sets \(name) in every instance itself" }
        if name.hasPrefix("BASH") { return "bash uses the BASH variables" }
        if bashSpecial.contains(name) { return "bash uses it and build scripts cannot set it" }
        if isLoaderVariable(name) {
            return "the dynamic loader and the C library act on it in every program that starts, "
                + "the sandbox's own tools among them, which run with more rights than the app"
        }
        return nil
    }

    /// What glibc's loader and library read from the environment to load code or write files
    /// (`LD_PRELOAD`, `LD_AUDIT`, `GCONV_PATH`, `GLIBC_TUNABLES` …; the names glibc itself drops
    /// for setuid programs that do so). gustd never passes them to an instance, even if a store
    /// from before they were refused holds them.
    public static func isLoaderVariable(_ name: String) -> Bool {
        name.hasPrefix("LD_") || loaderVariables.contains(name)
    }

    private static let loaderVariables: Set<String> = [
        "GCONV_PATH", "GETCONF_DIR", "GLIBC_TUNABLES", "LOCPATH", "NLSPATH", "MALLOC_TRACE",
    ]

    /// What gustd, the start script and the runtimes set; other `GUST_` names are
    /// settings an app may set (`GUST_BEFORE_HOOK_TIMEOUT`, `GUST_AFTER_HOOK_TIMEOUT`).
    private static let gustOwned: Set<String> = [
        "GUST_APP", "GUST_RELEASE", "GUST_INSTANCE", "GUST_SOCKET", "GUST_RECORDS_SOCKET", "GUST_RECORDS_TOKEN",
        "GUST_INTERNAL_TOKEN", "GUST_APP_ROOT", "GUST_HOME", "GUST_SHARE",
    ]

    private static let bashSpecial: Set<String> = [
        "UID", "EUID", "PPID", "SHELLOPTS", "GROUPS", "FUNCNAME", "IFS", "PS4", "ENV", "CDPATH", "GLOBIGNORE",
        "POSIXLY_CORRECT",
    ]

    /// The value as it may be shown to a person.
    public var displayValue: String { isSecret ? Self.mask : value }

    /// Environment variable names: a letter or `_`, then letters, digits and `_`.
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || (first.isASCII && first.properties.isAlphabetic) else {
            return false
        }
        return name.count <= 128 && name.unicodeScalars.allSatisfy {
            $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)))
        }
    }
}

extension Store {
    /// The app's config as it is now: what the next build and release get.
    public func configVars(_ app: AppName) throws -> [ConfigVar] {
        try db.query("SELECT * FROM config_vars WHERE app = ? ORDER BY name", [.text(app.rawValue)]).map { row in
            ConfigVar(name: row.string("name") ?? "", value: row.string("value") ?? "", isSecret: row.bool("secret"))
        }
    }

    public func config(_ app: AppName) throws -> [String: String] {
        Dictionary(uniqueKeysWithValues: try configVars(app).map { ($0.name, $0.value) })
    }

    /// The app's config with its secrets decrypted: for a build's environment only.
    public func openedConfig(_ app: AppName) throws -> [String: String] {
        let box = SecretBox(home: home)
        return Dictionary(uniqueKeysWithValues: try configVars(app).map { variable in
            (variable.name, variable.isSecret ? try box.open(variable.value, name: variable.name, app: app) : variable.value)
        })
    }

    /// Values that must never be shown, in logs or listings: decrypted, to mask output.
    public func secretValues(_ app: AppName) throws -> [String] {
        let box = SecretBox(home: home)
        return try configVars(app).filter(\.isSecret).map { try box.open($0.value, name: $0.name, app: app) }.filter { !$0.isEmpty }
    }

    public func secretNames(_ app: AppName) throws -> [String] {
        try configVars(app).filter(\.isSecret).map(\.name)
    }

    public func setConfig(_ app: AppName, _ values: [String: String], secret: Bool) throws {
        // Check every pair before writing any: a refused pair changes nothing.
        for (name, value) in values.sorted(by: { $0.key < $1.key }) {
            guard ConfigVar.isValidName(name) else {
                throw GustError("'\(name)' is not a valid config var name: use letters, digits and '_', not starting with a digit.")
            }
            if let reason = ConfigVar.reservation(of: name) {
                throw GustError("'\(name)' is reserved: \(reason). Choose another name.")
            }
            if HookTimeout.names.contains(name) { _ = try HookTimeout.parse(value, name: name) }
            if secret && value.count < ConfigVar.minimumSecretLength {
                throw GustError(
                    "The secret \(name) is too short: a secret must be at least \(ConfigVar.minimumSecretLength) characters, "
                        + "since masking a shorter value in logs would give it away."
                )
            }
        }
        // The app's config as it would be: bounded in count and size (what every instance's
        // environment holds, and what masking searches every logged line for).
        var after = try openedConfig(app)
        after.merge(values) { _, new in new }
        if after.count > ConfigVar.maxCount {
            throw GustError(
                "An app has at most \(ConfigVar.maxCount) config vars; this would make \(after.count).",
                hint: "Unset some (`gust config unset`), or keep related settings in one var."
            )
        }
        let bytes = after.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
        if bytes > ConfigVar.maxBytes {
            throw GustError(
                "An app's config vars hold at most \(ByteCount(ConfigVar.maxBytes)) of names and values; this would make \(ByteCount(bytes)).",
                hint: "Keep large files in the app's repository or records, not in its config."
            )
        }
        let box = SecretBox(home: home)
        for (name, plain) in values {
            let value = secret ? try box.seal(plain) : plain
            try db.run(
                """
                INSERT INTO config_vars (app, name, value, secret) VALUES (?, ?, ?, ?)
                ON CONFLICT (app, name) DO UPDATE SET value = excluded.value, secret = excluded.secret
                """,
                [.text(app.rawValue), .text(name), .text(value), SQLValue(secret)]
            )
        }
    }

    /// Removes config vars; returns the names that were set.
    @discardableResult
    public func unsetConfig(_ app: AppName, _ names: [String]) throws -> [String] {
        var removed: [String] = []
        for name in names {
            try db.run("DELETE FROM config_vars WHERE app = ? AND name = ?", [.text(app.rawValue), .text(name)])
            if db.changes > 0 { removed.append(name) }
        }
        return removed
    }
}

extension Store {
    /// The mark of a store scanned for plaintext secrets (`store_marks`).
    static let sealedMark = "secrets sealed"

    /// Seals secret values stored in plaintext (before secrets were encrypted): the
    /// config vars and every release's snapshot. Runs when the store opens, until it has
    /// once: every write seals, and the scan reads and decodes every release (70 ms per open
    /// with 3,000). The old bytes are overwritten (`secure_delete`) and the WAL folded back
    /// into the file.
    func sealPlaintextSecrets() throws {
        guard try db.query("SELECT 1 FROM store_marks WHERE name = ?", [.text(Self.sealedMark)]).isEmpty else { return }
        try sealPlaintext()
        try db.run("INSERT OR IGNORE INTO store_marks (name) VALUES (?)", [.text(Self.sealedMark)])
    }

    private func sealPlaintext() throws {
        let box = SecretBox(home: home)
        let plainVars = try db.query("SELECT app, name, value FROM config_vars WHERE secret = 1 AND value NOT LIKE 'gust-sealed:v1:%'")
        var releases: [(app: String, version: Int, config: [String: String])] = []
        for row in try db.query("SELECT app, version, config, secret_names FROM releases WHERE secret_names != '[]'") {
            let names = (try? JSONDecoder().decode([String].self, from: Data((row.string("secret_names") ?? "[]").utf8))) ?? []
            guard var config = try? JSONDecoder().decode([String: String].self, from: Data((row.string("config") ?? "{}").utf8)) else { continue }
            var changed = false
            for name in names {
                if let value = config[name], !SecretBox.isSealed(value) {
                    config[name] = try box.seal(value)
                    changed = true
                }
            }
            if changed, let app = row.string("app"), let version = row.int("version") { releases.append((app, version, config)) }
        }
        guard !plainVars.isEmpty || !releases.isEmpty else { return }
        try db.transaction {
            for row in plainVars {
                try db.run(
                    "UPDATE config_vars SET value = ? WHERE app = ? AND name = ?",
                    [.text(try box.seal(row.string("value") ?? "")), .text(row.string("app") ?? ""), .text(row.string("name") ?? "")]
                )
            }
            for release in releases {
                let config = String(decoding: try JSONEncoder.sorted.encode(release.config), as: UTF8.self)
                try db.run("UPDATE releases SET config = ? WHERE app = ? AND version = ?", [.text(config), .text(release.app), .integer(Int64(release.version))])
            }
        }
        try db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    }
}

extension Release {
    /// The release's config with its secrets decrypted: for an instance's environment only.
    public func openedConfig(home: GustHome) throws -> [String: String] {
        let box = SecretBox(home: home)
        var opened = config
        for name in secretNames {
            if let value = config[name] { opened[name] = try box.open(value, name: name, app: app) }
        }
        return opened
    }
}

extension String {
    /// The text with every secret value replaced by the mask.
    public func maskingSecrets(_ secrets: [String]) -> String {
        secrets.filter { $0.count >= ConfigVar.minimumSecretLength }
            .reduce(self) { $0.replacingOccurrences(of: $1, with: ConfigVar.mask) }
    }
}
