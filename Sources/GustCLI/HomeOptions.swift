public import ArgumentParser
public import GustCore

/// `--home`, shared by every command.
public struct HomeOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Gust's home directory (default: $GUST_HOME, else ~/.gust).", valueName: "path"))
    public var home: String?

    public init() {}

    public var gustHome: GustHome { GustHome.resolve(home) }

    public func openStore() throws -> Store { try Store(home: gustHome) }
}

/// `--json` for listing commands that scripts read.
public struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print JSON instead of a table.")
    public var json = false

    public init() {}
}

/// Parses an app name argument with the rule in the error message.
func parseAppName(_ raw: String) throws -> AppName {
    do { return try AppName(raw) } catch { throw ValidationError(error.message) }
}
