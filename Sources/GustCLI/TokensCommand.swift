import ArgumentParser
import Foundation
import GustCore

struct TokensCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokens",
        abstract: "Tokens that let callers use a private app's functions and its record store, or sign in to the web console.",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a token and print it once; only its hash is kept.",
            discussion: """
                Callers send an app token as the X-Auth-Token header. With --console, the token signs a person in \
                to the web console (`gustd --console`): an admin token without --app, else one that sees and \
                changes only the apps named with --app.
                """
        )
        @OptionGroup var home: HomeOptions
        @Argument(help: ArgumentHelp("The app (not with --console).", valueName: "app")) var appName: String?
        @Flag(help: "A token for the web console rather than for an app's callers.") var console = false
        var app: String { appName ?? "" }
        @Option(name: .customLong("app"), help: ArgumentHelp("With --console: an app the token may use (repeatable; none: admin).", valueName: "app"))
        var consoleApps: [String] = []
        @Option(help: ArgumentHelp("How long the token lives: 90d, 12h, 30m; at most 3660d. Without it, the token lives until revoked.", valueName: "duration")) var expires: String?
        @Option(help: "What the token is for.") var description: String = ""

        func validate() throws {
            if console, appName != nil { throw ValidationError("A console token names its apps with --app APP, not as an argument.") }
            if !console, !consoleApps.isEmpty { throw ValidationError("--app is for console tokens: add --console.") }
            if !console, appName == nil { throw ValidationError("Name the app, or add --console for a console token.") }
        }

        func run() throws {
            let store = try home.openStore()
            if console { return try createConsoleToken(store) }
            let name = try parseAppName(app)
            _ = try store.requireApp(name)
            let expiry = try expires.map { Date().addingTimeInterval(try parseLifetime($0)) }
            let (token, secret) = try store.createToken(name, description: description, expiresAt: expiry)
            let (actor, source) = Store.cliActor()
            try? store.recordActivity(app: name, actor: actor, source: source, action: "token create", detail: token.activityText)
            print(secret)
            FileHandle.standardError.write(Data((
                "Token \(token.id) for \(name)\(expiry.map { ", expires \($0)" } ?? ""). It is shown only this once.\n"
            ).utf8))
        }

        private func createConsoleToken(_ store: Store) throws {
            let apps = try consoleApps.map(parseAppName)
            let expiry = try expires.map { Date().addingTimeInterval(try parseLifetime($0)) }
            let (token, secret) = try store.createConsoleToken(apps: apps.isEmpty ? nil : apps, description: description, expiresAt: expiry)
            print(secret)
            FileHandle.standardError.write(Data((
                "Console token \(token.id) (\(token.scope))\(expiry.map { ", expires \($0)" } ?? ""). It is shown only this once.\n"
            ).utf8))
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an app's tokens, or the console tokens (never their secrets).")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: ArgumentHelp("The app (not with --console).", valueName: "app")) var appName: String?
        @Flag(help: "List the web console's tokens.") var console = false
        var app: String { appName ?? "" }

        func validate() throws {
            if console == (appName != nil) { throw ValidationError("Name the app, or give --console.") }
        }

        func run() throws {
            let store = try home.openStore()
            if console {
                let tokens = try store.consoleTokens()
                if output.json { return print(try Formatting.json(tokens)) }
                guard !tokens.isEmpty else { return print("No console tokens. Create one with `gust tokens create --console`.") }
                return print(Formatting.table(["ID", "SCOPE", "DESCRIPTION", "CREATED", "LAST USED", "STATE"], tokens.map { token in
                    [String(token.id), token.scope, token.description.isEmpty ? "-" : token.description, Formatting.age(of: token.createdAt),
                     token.lastUsedAt.map { Formatting.age(of: $0) } ?? "never",
                     token.revokedAt != nil ? "revoked" : (token.isValid() ? "active" : "expired")]
                }))
            }
            let name = try parseAppName(app)
            _ = try store.requireApp(name)
            let tokens = try store.tokens(name)
            if output.json { return print(try Formatting.json(tokens)) }
            guard !tokens.isEmpty else { return print("\(name) has no tokens. Create one with `gust tokens create \(name)`.") }
            print(Formatting.table(["ID", "DESCRIPTION", "CREATED", "EXPIRES", "LAST USED", "STATE"], tokens.map { token in
                [String(token.id), token.description.isEmpty ? "-" : token.description, Formatting.age(of: token.createdAt),
                 token.expiresAt.map { "\($0)" } ?? "never", token.lastUsedAt.map { Formatting.age(of: $0) } ?? "never",
                 token.revokedAt != nil ? "revoked" : (token.isValid() ? "active" : "expired")]
            }))
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a token; it stops working at once (a console token's sessions end with it).",
            discussion: "gust tokens revoke APP ID, or gust tokens revoke --console ID."
        )
        @OptionGroup var home: HomeOptions
        @Flag(help: "Revoke a web console token.") var console = false
        @Argument(help: "The app, then the token's id from `gust tokens list` (with --console: the id alone).") var words: [String]
        var app: String { console ? "" : words.first ?? "" }

        func validate() throws {
            guard words.count == (console ? 1 : 2), Int(words.last ?? "") != nil else {
                throw ValidationError(console ? "Give the console token's id." : "Give the app and the token's id.")
            }
        }

        func run() throws {
            let store = try home.openStore()
            let id = Int(words.last!)!
            if console {
                try store.revokeConsoleToken(id: id)
                return print("Revoked console token \(id).")
            }
            let name = try parseAppName(words[0])
            _ = try store.requireApp(name)
            try store.revokeToken(name, id: id)
            let (actor, source) = Store.cliActor()
            try? store.recordActivity(app: name, actor: actor, source: source, action: "token revoke", detail: "token \(id)")
            print("Revoked token \(id) of \(name).")
        }
    }
}

/// `90d`, `12h`, `30m`, `45s` in seconds.
func parseLifetime(_ text: String) throws -> TimeInterval {
    do { return try AppToken.lifetime(text) } catch let error as GustError { throw ValidationError(error.message) }
}
