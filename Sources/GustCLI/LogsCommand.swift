import ArgumentParser
import Foundation
import GustCore

struct LogsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print what an app's functions and schedules wrote to stdout and stderr.",
        discussion: """
            Each line shows its time, release, instance (or stream) and, when known, the function. \
            With --json, one JSON object per line (NDJSON): time, app, release, instance, stream, function, line. \
            Storage is bounded per app: logs/APP.log rotates into APP.log.1, .2, … at gustd's --log-max (4 MB), \
            keeping --log-files of them and lines younger than --log-max-age; the oldest lines go first.
            """
    )
    @OptionGroup var home: HomeOptions
    @Argument(help: "The app.") var app: String
    @Option(name: .short, help: "How many of the latest lines to print.") var n = 100
    @Flag(name: [.short, .long], help: "Keep printing new lines as they come, until interrupted.") var follow = false
    @Option(help: ArgumentHelp("Only lines of this function: an op or schedule name, a hook (`before_save cat`) or a handler path (`/hello`).", valueName: "name"))
    var function: String?
    @Flag(help: "Print each line as a JSON object (NDJSON), for tools.") var json = false

    func run() throws {
        let name = try parseAppName(app)
        let store = try home.openStore()
        _ = try store.requireApp(name)
        let log = AppLog(home: store.home, app: name)
        let show = { (entry: LogEntry) in print(json ? entry.jsonLine(app: name) : entry.formatted) }
        for entry in log.tail(max(0, n), function: function) { show(entry) }
        guard follow else { return }
        fflush(nil)
        log.follow(function: function) { entry in
            show(entry)
            fflush(nil)
            return true
        }
    }
}
