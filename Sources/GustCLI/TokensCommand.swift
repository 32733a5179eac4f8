import ArgumentParser
import Foundation
import GustCore

struct TokensCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokens",
        abstract: "Tokens that let callers use a private app's functions and its record store.",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a token and print it once; only its hash is kept.",
            discussion: "Callers send it as the X-Auth-Token header."
        )
        @OptionGroup var home: HomeOptions
        @Argument(help: "The app.") var app: String
        @Option(help: ArgumentHelp("How long the token lives: 90d, 12h, 30m.", valueName: "duration")) var expires: String?
        @Option(help: "What the token is for.") var description: String = ""

        func run() throws {
            let name = try parseAppName(app)
            let store = try home.openStore()
            _ = try store.requireApp(name)
            let expiry = try expires.map { Date().addingTimeInterval(try parseLifetime($0)) }
            let (token, secret) = try store.createToken(name, description: description, expiresAt: expiry)
            print(secret)
            FileHandle.standardError.write(Data((
                "Token \(token.id) for \(name)\(expiry.map { ", expires \($0)" } ?? ""). It is shown only this once.\n"
            ).utf8))
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an app's tokens (never their secrets).")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The app.") var app: String

        func run() throws {
            let name = try parseAppName(app)
            let store = try home.openStore()
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
        static let configuration = CommandConfiguration(abstract: "Revoke a token; it stops working at once.")
        @OptionGroup var home: HomeOptions
        @Argument(help: "The app.") var app: String
        @Argument(help: "The token's id, from `gust tokens list`.") var id: Int

        func run() throws {
            let name = try parseAppName(app)
            let store = try home.openStore()
            _ = try store.requireApp(name)
            try store.revokeToken(name, id: id)
            print("Revoked token \(id) of \(name).")
        }
    }
}

/// `90d`, `12h`, `30m`, `45s` in seconds.
func parseLifetime(_ text: String) throws -> TimeInterval {
    let units: [Character: TimeInterval] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]
    guard let unit = text.last.flatMap({ units[$0] }), let amount = Double(text.dropLast()), amount > 0 else {
        throw ValidationError("'\(text)' is not a duration; write it like 90d, 12h or 30m.")
    }
    return amount * unit
}
