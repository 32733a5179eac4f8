public import ArgumentParser
import Foundation
import GustCore

/// `gust`: the admin CLI. Subcommands live one per file beside this one.
public struct GustCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "gust",
        abstract: "Deploy cloud functions with git push, on a server you own.",
        subcommands: [DevCommand.self, CallCommand.self, AppsCommand.self, ReleasesCommand.self, RollbackCommand.self, ConfigCommand.self, TokensCommand.self, DomainsCommand.self, LogsCommand.self, DrainsCommand.self, SchedulesCommand.self, ScaleCommand.self, LimitsCommand.self, StacksCommand.self, PsCommand.self, KeysCommand.self, BackupCommand.self, RestoreCommand.self, SSHCommand.self]
    )

    public init() {}
}

extension GustCommand {
    /// Runs a command parsed from `gust`'s arguments (or an SSH session's). A `ValidationError`
    /// its `run()` throws, for values that parse but do not hold (`--min 5 --max 2`), is reported
    /// with that command's usage and `--help`, as ArgumentParser reports one from parsing; its
    /// own `main` would show the root's `gust <subcommand>` instead. Other errors as before.
    public static func run(_ command: any ParsableCommand) async {
        do {
            if var async = command as? any AsyncParsableCommand {
                try await async.run()
            } else {
                var command = command
                try command.run()
            }
        } catch let error as ValidationError {
            let type = Swift.type(of: command)
            let path = ([configuration.commandName ?? "gust"] + (Self.names(to: type) ?? [])).joined(separator: " ")
            FileHandle.standardError.write(Data("""
                Error: \(error.message.linesVisibleAtTerminal)
                Usage: \(usageString(for: type))
                  See '\(path) --help' for more information.

                """.utf8))
            Foundation.exit(ExitCode.validationFailure.rawValue)
        } catch {
            exit(withError: shown(error))
        }
    }

    /// `error` as the terminal is shown it: a `GustError` often carries what an app or a pushed
    /// repository controls (a function's name in a refused manifest, a schedule's spec, gustd's
    /// answer over SSH), so its lines are shown `linesVisibleAtTerminal`. ArgumentParser's own
    /// errors (help, usage, exit codes) stay as they are.
    public static func shown(_ error: any Error) -> any Error {
        guard let error = error as? GustError else { return error }
        return GustError(error.message.linesVisibleAtTerminal, code: error.code, hint: error.hint?.linesVisibleAtTerminal)
    }

    /// The subcommand names from `root` down to `type`, nil if `type` is not below it.
    private static func names(to type: any ParsableCommand.Type, from root: any ParsableCommand.Type = GustCommand.self) -> [String]? {
        if type == root { return [] }
        for sub in root.configuration.subcommands {
            if let below = names(to: type, from: sub) { return [sub.configuration.commandName ?? sub._commandName] + below }
        }
        return nil
    }
}
