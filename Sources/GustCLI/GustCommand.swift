public import ArgumentParser

/// `gust`: the admin CLI. Subcommands live one per file beside this one.
public struct GustCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "gust",
        abstract: "Deploy cloud functions with git push, on a server you own.",
        subcommands: [DevCommand.self, CallCommand.self, AppsCommand.self, ReleasesCommand.self, RollbackCommand.self, ConfigCommand.self, TokensCommand.self, DomainsCommand.self, LogsCommand.self, DrainsCommand.self, SchedulesCommand.self, ScaleCommand.self, LimitsCommand.self, StacksCommand.self, PsCommand.self, KeysCommand.self, BackupCommand.self, RestoreCommand.self, SSHCommand.self]
    )

    public init() {}
}
