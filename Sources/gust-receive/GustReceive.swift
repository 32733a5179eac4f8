import ArgumentParser
import Foundation
import GustBuild
import GustCore
import GustGit

/// The git hook binary: `hooks/pre-receive` and `hooks/post-receive` in every
/// app repository exec it with the repository as the working directory.
@main
struct GustReceive: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gust-receive",
        abstract: "Build a pushed commit into a release (run by git as an app repository's hook).",
        discussion: """
            pre-receive reads git's `old new ref` lines on stdin and builds main or master: export with \
            libgit2, detect and compile with the buildpacks, pack with libarchive, record release vN. \
            post-receive tags each new release vN. Limits: GUST_BUILD_TIMEOUT (seconds, default 900), \
            GUST_BUILD_HEARTBEAT (seconds of silence before a keep-alive line, default 20).
            """,
        subcommands: [PreReceive.self, PostReceive.self]
    )

    static func main() async {
        GustHome.restrictNewFiles()
        await (Self.self as any AsyncParsableCommand.Type).main(nil)
    }

    struct Options: ParsableArguments {
        @Option(help: ArgumentHelp("Gust's home directory (default: $GUST_HOME, else ~/.gust).", valueName: "path"))
        var home: String?

        @Option(help: ArgumentHelp("The app repository (default: the working directory, as git runs hooks).", valueName: "path"))
        var repository: String = FileManager.default.currentDirectoryPath

        func hook(reporter: BuildReporter) throws -> ReceiveHook {
            ReceiveHook(
                home: GustHome.resolve(home), installation: try Installation.current(),
                settings: BuildSettings.fromEnvironment(), reporter: reporter,
                repositoryPath: repository, environment: ProcessInfo.processInfo.environment
            )
        }
    }

    struct PreReceive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "pre-receive", abstract: "Build the pushed deploy branch.")
        @OptionGroup var options: Options

        func run() async throws {
            let input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            let hook = try options.hook(reporter: BuildReporter())
            let status = await hook.preReceive(input: input)
            if status != 0 { throw ExitCode(status) }
        }
    }

    struct PostReceive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "post-receive", abstract: "Tag the releases a push made.")
        @OptionGroup var options: Options

        func run() async throws {
            let updates = RefUpdate.parse(String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self))
            let reporter = BuildReporter()
            let hook = try options.hook(reporter: reporter)
            do {
                let app = try hook.appName()
                let store = try Store(home: hook.home)
                let repository = try GitRepository(path: options.repository)
                let tags = try ReleaseTags.tagMissing(app, store: store, repository: repository)
                if !tags.isEmpty { reporter.step("Tagged \(tags.joined(separator: ", "))") }
                // An app deployed from `master` gets HEAD there, so that a clone checks it out.
                if repository.headIsUnborn, let deployed = updates.first(where: { $0.isDeployBranch && !$0.isDeletion }) {
                    try repository.pointHead(at: deployed.ref)
                }
            } catch {
                // The push has already been accepted; a missing tag is not worth failing it.
                reporter.error("Could not tag the release: \(error)")
            }
        }
    }
}
