import ArgumentParser
import Foundation
import GustCore

/// `gust scale APP [--min N] [--max N] [--concurrency N] [--idle 5m]`: the app's
/// scale rules. Kept in the store, so they hold across deploys and restarts of gustd.
struct ScaleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract: "Show or change how many instances serve an app.",
        discussion: """
            gustd runs between --min and --max instances of the app's live release: another starts when calls \
            wait, and one idle for --idle stops (down to --min; --min 0 scales to zero, and the next call starts \
            one). A Python instance takes one call at a time, a Node instance up to --concurrency. Without \
            options, prints the rules in force. Limits: --max at most \(ScaleSettings.maxInstances), and over \
            SSH with a scoped key at most the ceiling an admin set (`gust limits --ceilings --max-instances N`).
            """
    )
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The app.") var app: String
    @Option(help: ArgumentHelp("Instances kept running however quiet the app is (0: scale to zero).", valueName: "n")) var min: Int?
    @Option(help: ArgumentHelp("Instances at most.", valueName: "n")) var max: Int?
    @Option(help: ArgumentHelp("Calls one Node instance takes at once.", valueName: "n")) var concurrency: Int?
    @Option(help: ArgumentHelp("How long an idle instance is kept: 30s, 5m, 1h.", valueName: "duration")) var idle: String?

    /// Set by `ssh-command` for a key scoped to some apps: --max stays under the admin's ceiling (`gust limits --ceilings`).
    var underCeilings = false

    func run() throws {
        let name = try parseAppName(app)
        let store = try home.openStore()
        _ = try store.requireApp(name)
        var settings = try store.scale(name)
        let change = ScaleChange(min: min, max: max, concurrency: concurrency, idle: idle)
        if !change.isEmpty {
            let (actor, source) = Store.cliActor()
            do {
                settings = try store.changeScale(name, change, underCeilings: underCeilings, actor: actor, source: source)
            } catch let error as GustError {
                throw ValidationError(error.message)
            }
            try? AdminClient(home: store.home).reconcile()  // a running gustd applies it at once
        }
        if output.json { return print(try Formatting.json(settings)) }
        print("\(name): min \(settings.min), max \(settings.max), concurrency \(settings.concurrency) (Node), idle \(settings.idleText)")
    }
}
