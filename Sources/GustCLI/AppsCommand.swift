import ArgumentParser
import Foundation
import GustCore

struct AppsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apps",
        abstract: "Create, list and destroy apps.",
        subcommands: [Create.self, List.self, Set.self, Destroy.self],
        defaultSubcommand: List.self
    )

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an app and its git repository.",
            discussion: "App names start with a lower-case letter and have at most 63 characters of a-z, 0-9 and '-'."
        )
        @OptionGroup var home: HomeOptions
        @Argument(help: "The app's name.") var app: String

        func run() throws {
            let name = try parseAppName(app)
            let store = try home.openStore()
            try AppAdmin.create(name, store: store, installation: try Installation.current())
            print("Created \(name).")
            print("Push to it: git push \(store.home.repository(name).path) main")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the apps.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        /// Set by `ssh-command` for a key scoped to some apps: only those are listed.
        var only: Swift.Set<AppName>? = nil

        func run() throws {
            let store = try home.openStore()
            let apps = try store.apps().filter { only?.contains($0.name) ?? true }.map { app in Listed(app: app, scale: try store.scale(app.name)) }
            if output.json { return print(try Formatting.json(apps)) }
            guard !apps.isEmpty else { return print("No apps yet. Create one with `gust apps create NAME`.") }
            print(Formatting.table(["APP", "LIVE", "VISIBILITY", "SCALE", "IDLE", "CREATED"], apps.map { listed in
                let app = listed.app
                return [app.name.rawValue, app.liveVersion.map { "v\($0)" } ?? "-", app.isPrivate ? "private" : "public",
                        "\(listed.scale.min)-\(listed.scale.max)", listed.scale.idleText, Formatting.age(of: app.createdAt)]
            }))
        }

        /// An app as listed: its own fields and, beside them, how it scales (`gust scale APP`).
        struct Listed: Encodable {
            var app: App
            var scale: ScaleSettings

            enum CodingKeys: String, CodingKey { case scale }

            func encode(to encoder: any Encoder) throws {
                try app.encode(to: encoder)
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(scale, forKey: .scale)
            }
        }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make an app private (its functions need an X-Auth-Token) or public."
        )
        @OptionGroup var home: HomeOptions
        @Argument(help: "The app.") var app: String
        @Flag(exclusivity: .exclusive, help: "Who may call the app's ops and handlers.") var visibility: Visibility

        enum Visibility: String, EnumerableFlag {
            case `private`, `public`
        }

        func run() throws {
            let name = try parseAppName(app)
            let store = try home.openStore()
            _ = try store.requireApp(name)
            try store.setPrivate(name, visibility == .private)
            try? AdminClient(home: store.home).reconcile()  // a running gustd applies it at once
            print(visibility == .private
                ? "\(name) is private: calls need a token (`gust tokens create \(name)`)."
                : "\(name) is public.")
        }
    }

    struct Destroy: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Destroy an app: its repository, releases, cache, data, logs and unshared artifacts."
        )
        @OptionGroup var home: HomeOptions
        @Argument(help: "The app to destroy.") var app: String
        @Option(help: ArgumentHelp("Repeat the app's name to confirm.", valueName: "app")) var confirm: String?

        func run() throws {
            let name = try parseAppName(app)
            guard confirm == app else {
                throw ValidationError("Destroying \(app) cannot be undone. Confirm with: gust apps destroy \(app) --confirm \(app)")
            }
            let store = try home.openStore()
            let removed = try AppAdmin.destroy(name, store: store)
            let (actor, source) = Store.cliActor()
            try? store.recordActivity(
                app: name, actor: actor, source: source, action: "destroy",
                detail: "\(removed.releases) releases, \(removed.artifacts) artifacts removed"
            )
            print("Destroyed \(name): \(removed.releases) releases, \(removed.artifacts) artifacts removed.")
        }
    }
}
