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

    /// Names a config var cannot take: bash's read-only and special variables, which
    /// break every build that exports them ("UID: readonly variable"), and Gust's own.
    public static func reservation(of name: String) -> String? {
        if gustOwned.contains(name) { return "Gust sets \(name) in every instance itself" }
        if name.hasPrefix("BASH") { return "bash uses the BASH variables" }
        if bashSpecial.contains(name) { return "bash uses it and build scripts cannot set it" }
        return nil
    }

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

    /// Values that must never be shown, in logs or listings.
    public func secretValues(_ app: AppName) throws -> [String] {
        try configVars(app).filter(\.isSecret).map(\.value).filter { !$0.isEmpty }
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
            if secret && value.count < ConfigVar.minimumSecretLength {
                throw GustError(
                    "The secret \(name) is too short: a secret must be at least \(ConfigVar.minimumSecretLength) characters, "
                        + "since masking a shorter value in logs would give it away."
                )
            }
        }
        for (name, value) in values {
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

extension String {
    /// The text with every secret value replaced by the mask.
    public func maskingSecrets(_ secrets: [String]) -> String {
        secrets.filter { $0.count >= ConfigVar.minimumSecretLength }
            .reduce(self) { $0.replacingOccurrences(of: $1, with: ConfigVar.mask) }
    }
}
