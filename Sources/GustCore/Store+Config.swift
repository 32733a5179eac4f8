import Foundation

/// One config var. Secret values are never printed back.
public struct ConfigVar: Sendable, Codable, Equatable {
    public var name: String
    public var value: String
    public var isSecret: Bool

    public static let mask = "••••••"

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
        for (name, value) in values {
            guard ConfigVar.isValidName(name) else {
                throw GustError("'\(name)' is not a valid config var name: use letters, digits and '_', not starting with a digit.")
            }
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
        secrets.reduce(self) { $0.replacingOccurrences(of: $1, with: ConfigVar.mask) }
    }
}
