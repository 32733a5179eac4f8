import ArgumentParser
import Foundation
import GustCore

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "The SSH keys that may push and run commands over SSH.",
        discussion: """
            Each change rewrites GUST_HOME/ssh/authorized_keys, whose lines make sshd run \
            `gust ssh-command NAME` for that key whatever the client asked for. See docs/ssh.md.
            """,
        subcommands: [Add.self, List.self, Remove.self, Grant.self, Revoke.self],
        defaultSubcommand: List.self
    )

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add an OpenSSH public key (ed25519, ecdsa, or RSA of 2048 bits or more).",
            discussion: "An admin key may push to any app (creating it on the first push) and run every command; a key with --app may push to and manage only those apps."
        )
        @OptionGroup var home: HomeOptions
        @Argument(help: "A name for the key: up to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit.") var name: String
        @Argument(help: ArgumentHelp("The public key file, or - for standard input (the default).", valueName: "file")) var file: String?
        @Flag(help: "Make it an admin key: it may push to and administer every app, and manage keys.") var admin = false
        @Option(name: .customLong("app"), help: ArgumentHelp("An app the key may push to and manage; repeat for more.", valueName: "app"))
        var apps: [String] = []

        func validate() throws {
            guard !(admin && !apps.isEmpty) else { throw ValidationError("Choose --admin or --app, not both.") }
        }

        func run() throws {
            let keyName = try KeyName(name)
            let scope: KeyScope = admin ? .admin : .apps(try apps.map(parseAppName))
            let key = try SSHPublicKey(parsing: try readKeyText())
            let store = try home.openStore()
            switch try KeysCommand.rewriting(store, { try store.addKey(keyName, key, scope: scope) }) {
            case .added(let entry):
                KeysCommand.note(store, "key add", "\(entry.name) (\(entry.type), \(entry.fingerprint)); scope: \(entry.scope)")
                print("Added key \(entry.name) (\(entry.type), \(entry.fingerprint)); scope: \(entry.scope).")
                if !entry.isAdmin && entry.apps.isEmpty {
                    print("It may not use any app yet: `gust keys grant \(entry.name) APP` lets it.")
                }
            case .unchanged(let entry):
                print("Key \(entry.name) is already added (\(entry.fingerprint)); nothing changed. Scope: \(entry.scope).")
            }
        }

        private func readKeyText() throws -> String {
            let data: Data
            if let file, file != "-" {
                guard let contents = FileManager.default.contents(atPath: file) else {
                    throw GustError("Cannot read \(file).", hint: "Give the path of a public key file, e.g. ~/.ssh/id_ed25519.pub, or - to read standard input.")
                }
                data = contents
            } else {
                data = FileHandle.standardInput.readDataToEndOfFile()
            }
            // A public key line is at most a few kilobytes (RSA 16384 is ~2.8 KB).
            guard data.count <= 64 * 1024 else { throw GustError("That input is \(data.count) bytes: too big for a public key.") }
            return String(decoding: data, as: UTF8.self)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the keys with their fingerprints and scope.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            let keys = try home.openStore().sshKeys()
            if output.json { return print(try Formatting.json(keys.map(KeySummary.init))) }
            guard !keys.isEmpty else { return print("No keys yet. Add one with `gust keys add NAME ~/.ssh/id_ed25519.pub --admin`.") }
            print(Formatting.table(["NAME", "TYPE", "FINGERPRINT", "SCOPE", "ADDED"], keys.map { key in
                [key.name.rawValue, key.type, key.fingerprint, key.scope, Formatting.age(of: key.addedAt)]
            }))
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a key; it can no longer connect.")
        @OptionGroup var home: HomeOptions
        @Argument(help: "The key's name.") var name: String?
        @Option(help: ArgumentHelp("Remove the key with this fingerprint instead.", valueName: "SHA256:…")) var fingerprint: String?

        func validate() throws {
            guard (name == nil) != (fingerprint == nil) else { throw ValidationError("Give a key NAME or --fingerprint SHA256:…, one of the two.") }
        }

        func run() throws {
            let store = try home.openStore()
            let keyName: KeyName
            if let fingerprint {
                guard let key = try store.sshKey(fingerprint: fingerprint) else {
                    throw GustError.notFound("No key has the fingerprint \(fingerprint).", hint: "See `gust keys list`.")
                }
                keyName = key.name
            } else {
                keyName = try KeyName(name ?? "")
            }
            try KeysCommand.rewriting(store) { try store.removeKey(keyName) }
            KeysCommand.note(store, "key remove", keyName.rawValue)
            print("Removed key \(keyName).")
        }
    }

    struct Grant: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Let a key push to and manage more apps.")
        @OptionGroup var arguments: KeyAppsArguments

        func run() throws {
            let (added, key, scope) = try arguments.apply { try $0.grant($1, apps: $2) }
            if !added.isEmpty { KeysCommand.note(try? arguments.home.openStore(), "key grant", "\(key): \(scope)") }
            print(added.isEmpty ? "\(key) could already use those apps; scope: \(scope)." : "Granted \(key): \(scope).")
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take apps away from a key.")
        @OptionGroup var arguments: KeyAppsArguments

        func run() throws {
            let (removed, key, scope) = try arguments.apply { try $0.revoke($1, apps: $2) }
            if !removed.isEmpty { KeysCommand.note(try? arguments.home.openStore(), "key revoke", "\(key): \(scope)") }
            print(removed.isEmpty ? "\(key) could not use those apps; scope: \(scope)." : "Revoked from \(key); scope now: \(scope).")
        }
    }

    /// Notes a change of the keys in the activity log (no app: keys are the server's), by the local
    /// user or the admin key that made it over SSH. Best effort, as every note.
    static func note(_ store: Store?, _ action: String, _ detail: String) {
        let (actor, source) = Store.cliActor()
        try? store?.recordActivity(app: nil, actor: actor, source: source, action: action, detail: detail)
    }

    /// Runs `change` on the keys table and rewrites authorized_keys, naming this `gust` in every line.
    static func rewriting<T>(_ store: Store, _ change: () throws -> T) throws -> T {
        try AuthorizedKeys.update(store, gust: try Installation.current().executable("gust"), change)
    }
}

/// What `keys grant` and `keys revoke` take: a key and the apps to add or take away.
struct KeyAppsArguments: ParsableArguments {
    @OptionGroup var home: HomeOptions
    @Argument(help: "The key's name.") var name: String
    @Argument(help: "The apps (at least one).") var apps: [String]

    /// Applies `change` to the key's apps; returns the apps it changed and the key's scope after.
    func apply(_ change: (Store, KeyName, [AppName]) throws -> [AppName]) throws -> (changed: [AppName], key: KeyName, scope: String) {
        let key = try KeyName(name)
        let appNames = try apps.map(parseAppName)
        let store = try home.openStore()
        let changed = try KeysCommand.rewriting(store) { try change(store, key, appNames) }
        return (changed, key, try store.requireKey(key).scope)
    }
}

/// One entry of `gust keys list --json`.
struct KeySummary: Encodable {
    var name: String
    var type: String
    var fingerprint: String
    var admin: Bool
    var apps: [String]
    var scope: String
    var addedAt: Date

    init(_ key: SSHKey) {
        name = key.name.rawValue
        type = key.type
        fingerprint = key.fingerprint
        admin = key.isAdmin
        apps = key.apps.map(\.rawValue)
        scope = key.scope
        addedAt = key.addedAt
    }
}
