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
    @Flag(name: [.short, .long], help: "Keep printing new lines as they come, until interrupted (or the app is destroyed; over SSH, until the key may no longer read it).")
    var follow = false
    @Option(help: ArgumentHelp("Only lines of this function: an op or schedule name, a hook (`before_save cat`) or a handler path (`/hello`).", valueName: "name"))
    var function: String?
    @Flag(help: "Print each line as a JSON object (NDJSON), for tools.") var json = false
    /// Set by `ssh-command`: the key (name and fingerprint) a followed stream is read for. Its
    /// rights are checked again as the stream runs, as the console checks its session's.
    var readForKey: String?
    var readForFingerprint: String?

    /// How often a followed stream asks again whether it may go on.
    static let recheck: Duration = .seconds(5)

    func run() throws {
        let name = try parseAppName(app)
        let store = try home.openStore()
        _ = try store.requireApp(name)
        let number = try store.appNumber(name)
        let log = AppLog(home: store.home, app: name)
        let show = { (entry: LogEntry) in print(json ? entry.jsonLine(app: name) : entry.formatted) }
        for entry in log.tail(max(0, n), function: function) { show(entry) }
        guard follow else { return }
        fflush(nil)
        var checked = ContinuousClock.now
        var ended: String?
        log.follow(function: function, finished: {
            guard ContinuousClock.now - checked >= Self.recheck else { return false }
            checked = .now
            ended = mayGoOn(store, name, number)
            return ended != nil
        }, mayShow: {
            // Before lines are shown: the app they are read for is still this one.
            guard (try? store.appNumber(name)) != number else { return true }
            ended = "The app '\(name)' was destroyed: its log stream ends."
            return false
        }) { entry in
            show(entry)
            fflush(nil)
            return true
        }
        if let ended { throw GustError(ended) }
    }

    /// Why the stream ends now, or nil: the app destroyed (a later app of the same name is another
    /// tenant's, whose log the stream would read from its first line), or the key that reads it
    /// removed, replaced or no longer granted the app.
    private func mayGoOn(_ store: Store, _ name: AppName, _ number: Int) -> String? {
        guard (try? store.appNumber(name)) == number else { return "The app '\(name)' was destroyed: its log stream ends." }
        guard let readForKey else { return nil }
        guard let keyName = try? KeyName(readForKey), let key = try? store.sshKey(keyName), key.fingerprint == readForFingerprint,
            key.mayUse(name)
        else {
            return "Key '\(readForKey)' may no longer read '\(name)': its log stream ends."
        }
        return nil
    }
}
