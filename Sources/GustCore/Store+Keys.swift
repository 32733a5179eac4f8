public import Foundation

/// A registered SSH key: who may connect, and what they may do.
public struct SSHKey: Sendable, Codable, Equatable {
    public var name: KeyName
    public var type: String
    /// The base64 wire blob, as it appears in `authorized_keys`.
    public var key: String
    public var fingerprint: String
    /// An admin key may push to (and create) any app and run every command.
    public var isAdmin: Bool
    /// The apps a non-admin key may push to and manage.
    public var apps: [AppName]
    public var addedAt: Date

    public func mayUse(_ app: AppName) -> Bool { isAdmin || apps.contains(app) }

    /// "admin", "cats, dogs", or "no apps yet".
    public var scope: String {
        isAdmin ? "admin" : apps.isEmpty ? "no apps yet" : apps.map(\.rawValue).joined(separator: ", ")
    }
}

/// What `gust keys add` asked a key to be allowed.
public enum KeyScope: Sendable, Equatable {
    case admin
    case apps([AppName])
}

/// What adding a key did.
public enum KeyAddition: Sendable, Equatable {
    case added(SSHKey)
    /// The same key was already there under the same name.
    case unchanged(SSHKey)
}

extension Store {
    /// Adds `key` as `name`. The same key under the same name is a no-op; the
    /// same key under another name, or another key under this name, is refused.
    public func addKey(_ name: KeyName, _ key: SSHPublicKey, scope: KeyScope) throws -> KeyAddition {
        try db.transaction {
            if let existing = try sshKey(fingerprint: key.fingerprint) {
                guard existing.name == name else {
                    throw GustError(
                        "This key is already added as '\(existing.name)' (\(existing.fingerprint)).",
                        code: 409, hint: "One key has one name. Use `gust keys grant \(existing.name) APP…` to widen what it may do."
                    )
                }
                return .unchanged(existing)
            }
            if let taken = try sshKey(name) {
                throw GustError(
                    "A different key is already named '\(name)' (\(taken.fingerprint)).",
                    code: 409, hint: "Pick another name, or `gust keys remove \(name)` first to replace it."
                )
            }
            let apps: [AppName]
            if case .apps(let granted) = scope { apps = granted } else { apps = [] }
            for app in apps { _ = try requireApp(app) }
            try db.run(
                "INSERT INTO ssh_keys (name, type, blob, fingerprint, admin, added_at) VALUES (?, ?, ?, ?, ?, ?)",
                [.text(name.rawValue), .text(key.type), .text(key.base64), .text(key.fingerprint),
                 SQLValue(scope == .admin), .real(Date().timeIntervalSince1970)]
            )
            try insertGrants(name, apps)
            return .added(try sshKey(name)!)
        }
    }

    /// Every key, by name.
    public func sshKeys() throws -> [SSHKey] {
        let grants = try db.query("SELECT key, app FROM ssh_key_apps ORDER BY app")
        var apps: [String: [AppName]] = [:]
        for row in grants {
            if let key = row.string("key"), let app = try? AppName(row.string("app") ?? "") { apps[key, default: []].append(app) }
        }
        return try db.query("SELECT * FROM ssh_keys ORDER BY name").map { try SSHKey(row: $0, apps: apps[$0.string("name") ?? ""] ?? []) }
    }

    public func sshKey(_ name: KeyName) throws -> SSHKey? {
        try db.query("SELECT * FROM ssh_keys WHERE name = ?", [.text(name.rawValue)]).first.map(withGrants)
    }

    public func sshKey(fingerprint: String) throws -> SSHKey? {
        try db.query("SELECT * FROM ssh_keys WHERE fingerprint = ?", [.text(fingerprint)]).first.map(withGrants)
    }

    /// The key, or an error that lists how to find the right name.
    public func requireKey(_ name: KeyName) throws -> SSHKey {
        guard let key = try sshKey(name) else {
            throw GustError.notFound("No key named '\(name)'.", hint: "See `gust keys list`.")
        }
        return key
    }

    public func removeKey(_ name: KeyName) throws {
        try db.run("DELETE FROM ssh_keys WHERE name = ?", [.text(name.rawValue)])
        guard db.changes > 0 else { throw GustError.notFound("No key named '\(name)'.", hint: "See `gust keys list`.") }
    }

    /// Lets a non-admin key use `apps`; returns the apps it did not have yet.
    @discardableResult
    public func grant(_ name: KeyName, apps: [AppName]) throws -> [AppName] {
        try db.transaction {
            let key = try requireKey(name)
            guard !key.isAdmin else {
                throw GustError("'\(name)' is an admin key: it may already use every app.", hint: "Grants are for keys added with --app.")
            }
            for app in apps { _ = try requireApp(app) }
            let new = Array(Set(apps).subtracting(key.apps)).sorted()
            try insertGrants(name, new)
            return new
        }
    }

    /// Takes `apps` away from a non-admin key; returns the apps it had.
    @discardableResult
    public func revoke(_ name: KeyName, apps: [AppName]) throws -> [AppName] {
        try db.transaction {
            let key = try requireKey(name)
            guard !key.isAdmin else {
                throw GustError(
                    "'\(name)' is an admin key, so it cannot lose single apps.",
                    hint: "Remove it and add it again with --app to make it a scoped key."
                )
            }
            let removed = Array(Set(apps).intersection(key.apps)).sorted()
            for app in removed {
                try db.run("DELETE FROM ssh_key_apps WHERE key = ? AND app = ?", [.text(name.rawValue), .text(app.rawValue)])
            }
            return removed
        }
    }

    private func insertGrants(_ name: KeyName, _ apps: [AppName]) throws {
        for app in apps {
            try db.run("INSERT OR IGNORE INTO ssh_key_apps (key, app) VALUES (?, ?)", [.text(name.rawValue), .text(app.rawValue)])
        }
    }

    private func withGrants(_ row: Row) throws -> SSHKey {
        let apps = try db.query("SELECT app FROM ssh_key_apps WHERE key = ? ORDER BY app", [.text(row.string("name") ?? "")])
            .compactMap { try? AppName($0.string("app") ?? "") }
        return try SSHKey(row: row, apps: apps)
    }
}

extension SSHKey {
    init(row: Row, apps: [AppName]) throws {
        name = try KeyName(row.string("name") ?? "")
        type = row.string("type") ?? ""
        key = row.string("blob") ?? ""
        fingerprint = row.string("fingerprint") ?? ""
        isAdmin = row.bool("admin")
        self.apps = apps
        addedAt = Date(timeIntervalSince1970: row.double("added_at") ?? 0)
    }
}
