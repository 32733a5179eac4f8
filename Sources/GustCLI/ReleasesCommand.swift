import ArgumentParser
import Foundation
import GustCore

struct ReleasesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "releases",
        abstract: "List an app's releases, newest first, show one with its build log, or export one (an OCI image, or Kubernetes manifests).",
        subcommands: [List.self, Show.self, Prune.self, Export.self],
        defaultSubcommand: List.self
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an app's releases, newest first.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The app.") var app: String

        func run() throws {
            let name = try parseAppName(app)
            let store = try home.openStore()
            _ = try store.requireApp(name)
            let releases = try store.releases(name)
            // What gustd makes of the live release (it may be crashing); nothing to add if gustd is not running.
            let served = (try? AdminClient(home: store.home).status())?[name.rawValue]
            let summaries = releases.map { release in
                var summary = ReleaseSummary(release)
                summary.pruned = release.status != .failed && !ReleaseRetention.hasArtifact(release, home: store.home)
                if let served, served.version == release.version {
                    summary.state = served.state
                    summary.error = served.error
                }
                return summary
            }
            if output.json { return print(try Formatting.json(summaries)) }
            guard !releases.isEmpty else { return print("\(name) has no releases yet. Push to it to make v1.") }
            print(Formatting.table(
                ["VERSION", "STATUS", "COMMIT", "BUILDPACK", "STACK", "SIZE", "BUILD", "CREATED", "DESCRIPTION"],
                zip(releases, summaries).map { release, summary in
                    var status = summary.state == "crashing" ? "\(release.status.rawValue), crashing" : release.status.rawValue
                    if summary.pruned == true { status += ", pruned" }
                    return ["v\(release.version)", status, release.shortCommit ?? "-", release.buildpack ?? "-",
                     release.stack ?? "-", release.artifactSize.map { ByteCount($0).description } ?? "-", Formatting.duration(release.buildSeconds),
                     Formatting.age(of: release.createdAt), release.description]
                }
            ))
            if let served, served.state == "crashing" {
                print("\nv\(served.version) is crashing: it cannot start (\((served.error ?? "unknown error").visibleAtTerminal)).")
                print("gustd tries again with growing pauses; see `gust logs \(name)`.")
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one release's details and its full build log.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The app.") var app: String
        @Argument(help: "The release, e.g. v3.") var version: String

        func run() throws {
            let name = try parseAppName(app)
            let number = try parseVersion(version)
            let store = try home.openStore()
            _ = try store.requireApp(name)
            let release = try store.requireRelease(name, version: number)
            var shown = release
            shown.config = release.displayConfig  // secret values never leave the store
            if output.json { return print(try Formatting.json(shown)) }
            let rows: [(String, String?)] = [
                ("Release", "v\(release.version) of \(name)"),
                ("Status", release.status.rawValue),
                ("Description", release.description),
                ("Commit", release.commit),
                ("Buildpack", release.buildpack),
                ("Artifact", release.artifact.map { "\($0) (\(ByteCount(release.artifactSize ?? 0)))" }),
                ("Process", release.process),
                ("Stack", release.stack ?? (release.status == .failed ? nil : "the host's system")),
                ("Build time", Formatting.duration(release.buildSeconds)),
                ("Created", "\(release.createdAt) (\(Formatting.age(of: release.createdAt)))"),
                ("Rollback of", release.rollbackOf.map { "v\($0)" }),
                ("Error", release.error),
                ("Config", shown.config.isEmpty ? nil : shown.config.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")),
            ]
            for case let (label, value?) in rows {
                print("\(label + ":")".padding(toLength: 13, withPad: " ", startingAt: 0) + value.visibleAtTerminal)
            }
            print("\n--- build log ---")
            // The build's output is the pushed code's: shown as text, escape sequences and all.
            print(release.log.linesVisibleAtTerminal, terminator: release.log.hasSuffix("\n") ? "" : "\n")
        }
    }
}

/// `v3` or `3`.
func parseVersion(_ raw: String) throws -> Int {
    let digits = raw.hasPrefix("v") ? String(raw.dropFirst()) : raw
    guard let number = Int(digits), number > 0 else {
        throw ValidationError("'\(raw)' is not a release version; write it as v3 (see `gust releases APP`).")
    }
    return number
}

/// One line of `gust releases --json`: everything but the log.
struct ReleaseSummary: Encodable {
    var version: Int
    var status: String
    var commit: String?
    var buildpack: String?
    var artifact: String?
    var artifactSize: Int?
    var buildSeconds: Double?
    var createdAt: Date
    var description: String
    var rollbackOf: Int?
    /// For the release gustd serves: `running`, `starting` or `crashing`.
    var state: String?
    /// Why it cannot start, while it is crashing.
    var error: String?
    /// Its artifact was removed by `gust releases prune`: it cannot be rolled back to.
    var pruned: Bool?
    /// The stack it runs on (`gust stacks list`); absent: the host's system.
    var stack: String?

    init(_ release: Release) {
        version = release.version
        status = release.status.rawValue
        commit = release.commit
        buildpack = release.buildpack
        artifact = release.artifact
        artifactSize = release.artifactSize
        buildSeconds = release.buildSeconds
        createdAt = release.createdAt
        description = release.description
        rollbackOf = release.rollbackOf
        stack = release.stack
    }
}
