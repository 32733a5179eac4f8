import ArgumentParser

/// The router daemon. Serving arrives with the router issue; until then it
/// starts, says so, and exits cleanly.
@main
struct Gustd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gustd",
        abstract: "Gust's router daemon (not serving yet: see docs/architecture.md)."
    )

    @Option(help: ArgumentHelp("Gust's home directory (default: $GUST_HOME, else ~/.gust).", valueName: "path"))
    var home: String?

    func run() throws {
        print("gustd: the router is not built yet; nothing to serve.")
    }
}
