import ArgumentParser
import Foundation
import GustCore

extension ReleasesCommand {
    /// `gust releases prune APP [--keep N]`: frees the disk old releases hold.
    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove the artifacts and unpacked directories of an app's old releases.",
            discussion: """
                Keeps the artifacts of the N newest releases that built, and always those of the live release, \
                the release `gust rollback` would go back to, and any release newer than the live one. Pruned \
                releases stay listed (with their build logs) as `pruned`, and cannot be rolled back to. An \
                artifact another kept release or another app shares is kept, and so is one another app's build \
                packed since the pruned release was made (for a day: its release may not be recorded yet). \
                gustd's --keep-releases applies \
                the same rule after every deploy.
                """
        )
        @OptionGroup var home: HomeOptions
        @Argument(help: "The app.") var app: String
        @Option(help: ArgumentHelp("Releases to keep besides the live one and the rollback target.", valueName: "n"))
        var keep: Int = 10

        func validate() throws {
            guard keep >= 0 else { throw ValidationError("--keep must be 0 or more.") }
        }

        func run() throws {
            let name = try parseAppName(app)
            let store = try home.openStore()
            _ = try store.requireApp(name)
            // One deploy of an app at a time: no push or rollback picks a release while its artifact goes.
            let lock = try FileLock(store.home.lock(name)) { print("-----> Waiting for a deploy of \(name) to finish") }
            defer { withExtendedLifetime(lock) {} }
            let (plan, freed) = try store.pruneArtifacts(name, keep: keep)
            for version in plan.pruned {
                try AppAdmin.removeTree(store.home.release(name, version: version))
            }
            let kept = plan.kept.map { "v\($0)" }.joined(separator: ", ")
            if plan.pruned.isEmpty {
                print("Nothing to prune: \(name) keeps \(kept.isEmpty ? "no releases" : kept).")
            } else {
                print("Pruned \(plan.pruned.count) release\(plan.pruned.count == 1 ? "" : "s") of \(name) (\(ByteCount(freed)) freed); kept \(kept).")
            }
        }
    }
}
