import ArgumentParser
import GustCore

struct RollbackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Make an earlier release's artifact and config live again, as a new release.",
        discussion: """
            Without a version, rolls back to the newest release before the live one that did not fail. \
            The new release goes through the same start, check and switch as a deploy, and the command \
            returns once it serves.
            """
    )

    @OptionGroup var home: HomeOptions
    @Argument(help: "The app.") var app: String
    @Argument(help: "The release to bring back, e.g. v3 (default: the one before the live one).") var version: String?

    func run() throws {
        let name = try parseAppName(app)
        let store = try home.openStore()
        guard let live = try store.requireApp(name).liveVersion else {
            throw GustError("\(name) has nothing live to roll back from.", hint: "Push to it to deploy a first release.")
        }
        let releases = try store.releases(name)
        let target: Release
        if let version {
            target = try store.requireRelease(name, version: try parseVersion(version))
        } else if let previous = releases.first(where: { $0.version < live && $0.status != .failed }) {
            target = previous
        } else {
            throw GustError("\(name) has no release before v\(live) to roll back to.")
        }
        guard target.status != .failed else {
            let good = releases.filter { $0.status != .failed && $0.version != live }.map { "v\($0.version)" }
            throw GustError(
                "v\(target.version) of \(name) failed, so it cannot be rolled back to.",
                hint: good.isEmpty ? nil : "Releases that can: \(good.joined(separator: ", "))."
            )
        }
        guard ReleaseRetention.hasArtifact(target, home: store.home) else {
            throw GustError(
                "v\(target.version) of \(name) was pruned: its artifact is gone, so it cannot be rolled back to.",
                hint: "`gust releases \(name)` marks the releases that were pruned; push its commit again to rebuild it."
            )
        }
        guard target.version != live else {
            throw GustError("v\(target.version) is already live.", hint: "`gust releases \(name)` lists the others.")
        }
        try ReleaseActivation.release(
            from: target, store: store, description: "Rollback to v\(target.version)", rollbackOf: target.version,
            config: target.config, secretNames: target.secretNames
        )
    }
}
