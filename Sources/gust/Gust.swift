import ArgumentParser
import GustCLI
import GustCore

@main
enum Gust {
    static func main() async {
        GustHome.restrictNewFiles()
        let command: any ParsableCommand
        do {
            command = try await GustCommand.asyncParseAsRoot(homeAfterSubcommand(Array(CommandLine.arguments.dropFirst())))
        } catch {
            GustCommand.exit(withError: GustCommand.shown(error))
        }
        await GustCommand.run(command)
    }

    /// `gust --home H apps list` means `gust apps list --home H`: `--home` is
    /// an option of every subcommand, and people write it first too.
    static func homeAfterSubcommand(_ arguments: [String]) -> [String] {
        guard let first = arguments.first else { return arguments }
        if first == "--home", arguments.count >= 2 { return Array(arguments.dropFirst(2)) + arguments.prefix(2) }
        if first.hasPrefix("--home=") { return Array(arguments.dropFirst()) + [first] }
        return arguments
    }
}
