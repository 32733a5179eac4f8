import ArgumentParser
import Foundation
import GustCore

struct LogsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print what an app's functions and schedules wrote to stdout and stderr.",
        discussion: """
            Each line shows its time, release, instance (or stream) and, when known, the function. \
            Storage is bounded per app: logs/APP.log rotates into APP.log.1 at 4 MB and the oldest lines go first.
            """
    )
    @OptionGroup var home: HomeOptions
    @Argument(help: "The app.") var app: String
    @Option(name: .short, help: "How many of the latest lines to print.") var n = 100
    @Flag(name: [.short, .long], help: "Keep printing new lines as they come, until interrupted.") var follow = false
    @Option(help: ArgumentHelp("Only lines of this function: an op or schedule name, a hook (`before_save cat`) or a handler path (`/hello`).", valueName: "name"))
    var function: String?

    func run() throws {
        let name = try parseAppName(app)
        let store = try home.openStore()
        _ = try store.requireApp(name)
        let log = AppLog(home: store.home, app: name)
        for entry in log.tail(max(0, n), function: function) { print(entry.formatted) }
        guard follow else { return }
        fflush(nil)
        log.follow(function: function) { entry in
            print(entry.formatted)
            fflush(nil)
            return true
        }
    }
}
