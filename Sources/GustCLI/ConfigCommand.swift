import ArgumentParser
import Foundation
import GustCore

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Show and change an app's config vars (its functions see them as environment variables).",
        discussion: """
            Each change makes a new release from the live release's artifact and makes it live, as a deploy \
            does; the next build also gets the vars (in the buildpack's ENV_DIR). Secret values are never \
            printed back.
            """,
        subcommands: [Show.self, Set.self, Unset.self],
        defaultSubcommand: Show.self
    )

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the config vars, secrets masked.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The app.") var app: String

        func run() throws {
            let name = try parseAppName(app)
            let store = try home.openStore()
            _ = try store.requireApp(name)
            let vars = try store.configVars(name)
            if output.json {
                return print(try Formatting.json(Dictionary(uniqueKeysWithValues: vars.map { ($0.name, $0.displayValue) })))
            }
            guard !vars.isEmpty else { return print("\(name) has no config vars. Set one with `gust config set \(name) KEY=value`.") }
            for variable in vars {
                print("\(variable.name)=\(variable.displayValue.visibleAtTerminal)\(variable.isSecret ? "  (secret)" : "")")
            }
        }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set config vars and release them.")
        @OptionGroup var home: HomeOptions
        @Argument(help: "The app.") var app: String
        @Argument(help: ArgumentHelp("KEY=value pairs.", valueName: "KEY=value")) var pairs: [String]
        @Flag(help: "Mark these values secret: masked in listings, logs and build output.") var secret = false

        func run() throws {
            let name = try parseAppName(app)
            var values: [String: String] = [:]
            for pair in pairs {
                guard let equals = pair.firstIndex(of: "=") else {
                    throw ValidationError("'\(pair)' has no value: write KEY=value.")
                }
                guard equals != pair.startIndex else {
                    throw ValidationError("'\(pair)' has no name: write KEY=value.")
                }
                values[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
            }
            guard !values.isEmpty else { throw ValidationError("Give at least one KEY=value.") }
            let store = try home.openStore()
            _ = try store.requireApp(name)
            try store.setConfig(name, values, secret: secret)
            try releaseConfig(store, name, description: "Set \(values.keys.sorted().joined(separator: ", "))")
        }
    }

    struct Unset: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove config vars and release the change.")
        @OptionGroup var home: HomeOptions
        @Argument(help: "The app.") var app: String
        @Argument(help: "Names of the vars to remove.") var names: [String]

        func run() throws {
            let name = try parseAppName(app)
            let store = try home.openStore()
            _ = try store.requireApp(name)
            let removed = try store.unsetConfig(name, names)
            guard !removed.isEmpty else { return print("None of \(names.joined(separator: ", ")) was set; nothing changed.") }
            try releaseConfig(store, name, description: "Unset \(removed.joined(separator: ", "))")
        }
    }
}

/// A config change goes live as a new release of the live artifact; with
/// nothing live yet, it waits for the next push.
private func releaseConfig(_ store: Store, _ app: AppName, description: String) throws {
    guard let live = try store.app(app)?.liveVersion.flatMap({ try store.release(app, version: $0) }) else {
        return print("\(description) for \(app). Nothing is live yet: the next push uses it.")
    }
    try ReleaseActivation.release(
        from: live, store: store, description: description,
        config: try store.config(app), secretNames: try store.secretNames(app)
    )
}
