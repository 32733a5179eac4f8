import ArgumentParser
import Foundation
import GustCore

/// `gust schedules APP`: what gustd runs for the app's live release and how its last runs went.
/// Reads the store, so it works while gustd runs (and when it does not).
struct SchedulesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedules",
        abstract: "List an app's schedules with their spec, next run and last runs.",
        discussion: """
            gustd runs the every and cron schedules of the live release. An every schedule keeps its rhythm \
            across deploys (runs fall on the time it was first deployed plus whole intervals); cron follows \
            UTC unless the app's config sets TZ to an IANA zone name (`gust config set APP TZ=Europe/Paris`). \
            A run still going when the next is due makes that one skipped. The last \(Store.runsKeptPerSchedule) \
            runs of each schedule are kept.
            """
    )
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The app.") var app: String
    @Option(help: "How many of each schedule's latest runs to show.") var runs = 5

    struct Listing: Encodable {
        var name: String
        var kind: String
        var spec: String
        var params: JSONValue?
        var timeZone: String
        var anchor: Date
        var release: Int
        var nextRun: Date?
        var runs: [ScheduleRun]
    }

    func run() throws {
        let name = try parseAppName(app)
        let store = try home.openStore()
        let app = try store.requireApp(name)
        let now = Date()
        let listings = try store.schedules(name).map { schedule in
            let next = schedule.upcoming(at: now)
            return Listing(
                name: schedule.name, kind: schedule.kind, spec: schedule.spec,
                params: schedule.params.flatMap { try? JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) }, timeZone: schedule.timeZone,
                anchor: schedule.anchor, release: schedule.release, nextRun: next,
                runs: try store.runs(name, schedule: schedule.name, limit: max(0, runs))
            )
        }
        if output.json { return print(try Formatting.json(listings)) }
        guard app.liveVersion != nil else { return print("\(name) has no live release: push to deploy it.") }
        guard !listings.isEmpty else {
            return print("\(name) has no schedules. Register one with @gust.every('2m') or gust.cron('0 8 * * *', fn).")
        }
        for (index, listing) in listings.enumerated() {
            if index > 0 { print("") }
            let zone = listing.kind == "cron" ? " (\(listing.timeZone))" : ""
            let next = listing.nextRun.map { "\(Self.time($0)) (\(Self.until($0, now: now)))" } ?? "never"
            print("\(listing.name)  \(listing.kind) \(listing.spec)\(zone)  next \(next)".visibleAtTerminal)
            guard !listing.runs.isEmpty else {
                print("  no runs yet")
                continue
            }
            let rows = listing.runs.map { run in
                ["  " + Self.time(run.startedAt), run.status == .running ? "-" : Formatting.duration(run.seconds),
                 run.status.rawValue, "v\(run.release)", run.error ?? ""]
            }
            print(Formatting.table(["  STARTED", "TOOK", "STATUS", "RELEASE", "MESSAGE"], rows))
        }
    }

    static func time(_ date: Date) -> String {
        ISO8601DateFormatter.string(from: date, timeZone: .gmt, formatOptions: [.withInternetDateTime, .withFractionalSeconds])
    }

    static func until(_ date: Date, now: Date) -> String {
        let seconds = Int(date.timeIntervalSince(now).rounded(.up))
        switch seconds {
        case ..<1: return "now"
        case ..<120: return "in \(seconds) s"
        case ..<7200: return "in \(seconds / 60) min"
        case ..<172_800: return "in \(seconds / 3600) h"
        default: return "in \(seconds / 86_400) days"
        }
    }
}
