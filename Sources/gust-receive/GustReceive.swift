import ArgumentParser
import Foundation
import GustBuild
import GustCore

/// The git hook binary: `hooks/pre-receive` and `hooks/post-receive` in every
/// app repository exec it with the repository as the working directory.
@main
struct GustReceive: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gust-receive",
        abstract: "Build a pushed commit into a release (run by git as an app repository's hook).",
        discussion: """
            pre-receive reads git's `old new ref` lines on stdin and builds main or master: it exports the \
            pushed tree with libgit2, and gustd (which must be running) runs the buildpack's detect, compile and \
            release in the app's sandbox and packs the artifact, while this hook prints the build's lines; then it \
            records release vN. Interrupting the push stops the build. \
            post-receive tags each new release vN and asks gustd to switch to it. A build's limits (its time, output and \
            keep-alive lines) are gustd's: gustd --build-timeout, --build-output-limit, --build-heartbeat. \
            GUST_ADMIN_TIMEOUT: seconds gustd may say nothing, not even its heartbeat, before the hook gives up (default 60).
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
                reporter: reporter,
                repositoryPath: repository, environment: ProcessInfo.processInfo.environment
            )
        }
    }

    struct PreReceive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "pre-receive", abstract: "Build the pushed deploy branch.")
        @OptionGroup var options: Options

        func run() async throws {
            let input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            var hook = try options.hook(reporter: BuildReporter())
            hook.pusher = PusherConnection.ofParent()
            let status = await hook.preReceive(input: input)
            if status != 0 { throw ExitCode(status) }
        }
    }

    struct PostReceive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "post-receive", abstract: "Tag the releases a push made and switch to the new one.")
        @OptionGroup var options: Options

        func run() async throws {
            let input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            let hook = try options.hook(reporter: BuildReporter())
            let status = hook.postReceive(input: input)
            if status != 0 { throw ExitCode(status) }
        }
    }
}
