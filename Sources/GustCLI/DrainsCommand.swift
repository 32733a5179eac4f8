import ArgumentParser
import Foundation
import GustCore

/// `gust drains add|list|remove`: where gustd forwards an app's log lines as they come.
struct DrainsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drains",
        abstract: "Forward an app's log lines to an HTTP endpoint (NDJSON) or a syslog receiver.",
        discussion: """
            gustd sends each app's lines as they come, in batches: to http(s)://HOST/PATH as NDJSON POSTs, \
            to syslog://HOST:PORT or syslog+tls://HOST:PORT as RFC 5424 messages over TCP. A receiver that is \
            down is retried with backoff, from where it stopped; lines are lost only if the log rotates past \
            them meanwhile (gustd --log-max, --log-files), and the receiver then gets a note saying so. \
            Loopback, link-local, private networks (10/8, 172.16/12, 192.168/16, fc00::/7 …) and the server's \
            own addresses are refused unless an admin adds the drain with --allow-private.
            """,
        subcommands: [Add.self, List.self, Remove.self]
    )

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start forwarding an app's log to URL.")
        @OptionGroup var home: HomeOptions
        @Argument(help: "The app.") var app: String
        @Argument(help: "http(s)://HOST[:PORT]/PATH, syslog://HOST:PORT or syslog+tls://HOST:PORT.") var url: String
        @Flag(help: "Allow loopback, link-local, private networks' and this server's own addresses (admins only).") var allowPrivate = false

        func run() throws {
            let name = try parseAppName(app)
            let store = try home.openStore()
            let target = try DrainTarget(url)
            let drain = try store.addDrain(name, target, allowPrivate: allowPrivate)
            print("Drain \(drain.id): \(name)'s log lines written from now on go to \(target).")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an app's drains and how each is doing.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The app.") var app: String

        func run() throws {
            let name = try parseAppName(app)
            let store = try home.openStore()
            _ = try store.requireApp(name)
            let views = try store.drains(name).map { DrainView($0, state: DrainState.load(home: store.home, id: $0.id)) }
            if output.json { return print(try Formatting.json(views)) }
            guard !views.isEmpty else { return print("\(name) has no drains. Add one with `gust drains add \(name) URL`.") }
            print(Formatting.table(["ID", "URL", "DELIVERED", "LAST DELIVERY", "STATE"], views.map { view in
                [view.id, view.url, String(view.delivered), view.lastDelivery.map { Formatting.age(of: $0) } ?? "never", view.stateText]
            }))
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop forwarding to a drain.")
        @OptionGroup var home: HomeOptions
        @Argument(help: "The app.") var app: String
        @Argument(help: "The drain's id (from `gust drains list`) or its URL.") var drain: String

        func run() throws {
            let name = try parseAppName(app)
            let store = try home.openStore()
            let removed = try store.removeDrain(name, drain)
            print("Removed drain \(removed.id) (\(removed.target)) of \(name).")
        }
    }
}

/// A drain as `gust drains list` shows it.
struct DrainView: Encodable {
    var id: String
    var app: String
    var url: String
    var allowPrivate: Bool
    var delivered: Int
    var lastDelivery: Date?
    var failingSince: Date?
    var error: String?
    var gaps: Int

    init(_ drain: Drain, state: DrainState?) {
        id = drain.id
        app = drain.app.rawValue
        url = drain.target.description
        allowPrivate = drain.allowPrivate
        delivered = state?.delivered ?? 0
        lastDelivery = state?.lastDelivery
        failingSince = state?.failingSince
        error = state?.lastError
        gaps = state?.gaps ?? 0
    }

    var stateText: String {
        var text = error.map { "failing since \(failingSince.map { Formatting.age(of: $0) } ?? "now"): \($0)" } ?? "ok"
        if gaps > 0 { text += " (lines lost \(gaps) time\(gaps == 1 ? "" : "s"))" }
        return text
    }
}
