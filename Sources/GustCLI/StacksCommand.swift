import ArgumentParser
import Foundation
import GustBuild
import GustCore

/// `gust stacks`: the root filesystems builds and instances run on (docs/stacks.md). Run on the
/// server, as root (mmdebstrap makes a Debian root as root), with the home gustd uses.
struct StacksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stacks",
        abstract: "Build and list stacks: the Debian roots with Python and Node that builds and instances run on.",
        discussion: """
            A stack is a Debian minimal root filesystem (built with mmdebstrap from Debian's packages), named \
            (its suite by default) and versioned: bookworm@1, bookworm@2, trixie@1. A push builds on the newest \
            version of the default stack, or of the stack whose Python or Node satisfies the app's pin \
            (.python-version, runtime.txt, engines.node in package.json); the release records its stack and its \
            instances run on it, also after newer versions are built. With no stack built, builds and instances \
            use the host's own system.
            """,
        subcommands: [Build.self, List.self, Default.self, Remove.self],
        defaultSubcommand: List.self
    )

    struct Build: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build the next version of a stack with mmdebstrap (as root, on the server; a few minutes).",
            discussion: """
                Installs \(StackBuilder.packages.joined(separator: ", ")) from Debian's archive into \
                GUST_HOME/stacks/NAME@VERSION/rootfs, read-only, and records the Python and Node versions it \
                holds. A failed or interrupted build (Ctrl-C, SIGTERM, a dropped SSH session) stops mmdebstrap \
                and leaves nothing behind. Suites: \(StackBuilder.suites.joined(separator: ", ")).
                """
        )
        @OptionGroup var home: HomeOptions
        @Argument(help: "The stack's name (default: the suite's).") var name: String?
        @Option(help: ArgumentHelp("The Debian suite: \(StackBuilder.suites.joined(separator: " or ")).", valueName: "suite"))
        var suite: String?
        @Option(help: ArgumentHelp("A Debian mirror (default: deb.debian.org).", valueName: "url")) var mirror: String?
        @Flag(help: "Leave npm out (about half the size): Node apps with dependencies cannot build on the stack.")
        var withoutNpm = false
        @Option(name: .customLong("version"), help: ArgumentHelp(
            "Build this version, one the home lacks, instead of the next: what a restored home's releases need (`gust restore` names them).",
            valueName: "n"))
        var stackVersion: Int?

        func run() async throws {
            let suite = suite ?? (name.map { StackBuilder.suites.contains($0) ? $0 : nil } ?? "bookworm")
            guard let suite else { throw ValidationError("Name the Debian suite of stack \(name ?? ""): --suite bookworm or --suite trixie.") }
            let gustHome = home.gustHome
            guard FileManager.default.fileExists(atPath: gustHome.path) else {
                throw ValidationError("\(gustHome.path) is not a Gust home (run `gust apps create` or gustd there first, or pass --home).")
            }
            var builder = try StackBuilder(home: gustHome, name: name ?? suite, suite: suite)
            builder.withoutNPM = withoutNpm
            builder.mirror = mirror
            if let stackVersion {
                _ = try Stack.Reference(name: name ?? suite, version: stackVersion)  // a positive number
                builder.version = stackVersion
            }
            do {
                // Ctrl-C, SIGTERM or a dropped SSH session stop mmdebstrap (in a session of its own) and clean up.
                let stack = try await InterruptSignals.run(onSignal: builder.interruption.interrupt) {
                    try await builder.build { line in print(line) }
                }
                let catalog = StackCatalog(home: gustHome)
                let isDefault = catalog.defaultName(among: try catalog.list()) == stack.reference.name
                print("\(stack.reference) is ready\(isDefault ? " and is the default stack: the next push of every app builds on it" : "; `gust stacks default \(stack.reference.name)` makes new pushes use it").")
            } catch {
                throw GustError("Building the stack failed: \(error)")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the stacks: versions of Python and Node, size, age, and the releases on each.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions

        struct Row: Encodable {
            var reference: String
            var name: String
            var version: Int
            var suite: String
            var python: String?
            var node: String?
            var sizeBytes: Int?
            var createdAt: Date
            var releases: Int
            var isDefault: Bool
            var isNewest: Bool
        }

        func run() throws {
            let gustHome = home.gustHome
            let catalog = StackCatalog(home: gustHome)
            let stacks = try catalog.list()
            let users = (try? Store(home: gustHome).stackUsers()) ?? [:]
            let defaultName = catalog.defaultName(among: stacks)
            let newest = Set(try catalog.newest().map(\.reference))
            let rows = stacks.map { stack in
                Row(
                    reference: stack.reference.description, name: stack.reference.name, version: stack.reference.version, suite: stack.suite,
                    python: stack.python, node: stack.node, sizeBytes: stack.sizeBytes, createdAt: stack.createdAt,
                    releases: users[stack.reference.description]?.count ?? 0, isDefault: stack.reference.name == defaultName,
                    isNewest: newest.contains(stack.reference)
                )
            }
            if output.json { return print(try Formatting.json(rows)) }
            guard !rows.isEmpty else {
                return print("No stacks: builds and instances use this host's system. `gust stacks build bookworm` builds one.")
            }
            print(Formatting.table(
                ["STACK", "SUITE", "PYTHON", "NODE", "SIZE", "CREATED", "RELEASES", ""],
                rows.map { row in
                    [row.reference, row.suite, row.python ?? "-", row.node ?? "-", row.sizeBytes.map { ByteCount($0).description } ?? "-",
                     Formatting.age(of: row.createdAt), String(row.releases),
                     row.isNewest ? (row.isDefault ? "default" : "") : "older: runs its releases, builds nothing new"]
                }
            ))
        }
    }

    struct Default: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show or set the default stack: the name new pushes build on unless a pin needs another.",
            discussion: "Unset, it is the first stack built on this server. Releases already built stay on their stacks."
        )
        @OptionGroup var home: HomeOptions
        @Argument(help: "The stack name to make the default (e.g. trixie).") var name: String?

        func run() throws {
            let catalog = StackCatalog(home: home.gustHome)
            if let name {
                try catalog.setDefault(name)
                return print("New pushes build on the newest \(name) stack unless their pin needs another.")
            }
            guard let current = catalog.defaultName(among: try catalog.list()) else { return print("No stacks: builds use this host's system.") }
            print(current)
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a stack version no kept release runs on.",
            discussion: "Refused while a release that still has its artifact (so could be live again, by rollback) was built on it; prune those first (`gust releases prune`)."
        )
        @OptionGroup var home: HomeOptions
        @Argument(help: "The stack, e.g. bookworm@1.") var reference: String

        func run() throws {
            let parsed: Stack.Reference
            do { parsed = try Stack.Reference(parsing: reference) } catch { throw ValidationError("\(error)") }
            let gustHome = home.gustHome
            guard try StackCatalog(home: gustHome).stack(parsed) != nil else { throw GustError("No stack \(parsed) on this server.") }
            let users = (try Store(home: gustHome).stackUsers())[parsed.description] ?? []
            guard users.isEmpty else {
                let shown = users.prefix(5).joined(separator: ", ") + (users.count > 5 ? " and \(users.count - 5) more" : "")
                throw GustError("\(parsed) is kept: \(shown) \(users.count == 1 ? "runs" : "run") on it. Prune or replace those releases first.")
            }
            // Through the directory's descriptor: the home is gustd's user's, who could put a link at `stacks`.
            try StackBuilder.removeTree(try StacksDirectory(home: gustHome).stack(parsed))
            print("Removed \(parsed).")
        }
    }
}
