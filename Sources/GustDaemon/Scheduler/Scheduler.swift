import Foundation
import GustCore
import Logging
import NIOPosix

/// Runs the `every` and `cron` schedules of each app's live release.
///
/// The schedules table is its memory: an `every` schedule keeps the anchor it
/// was first seen with, so runs stay on `anchor + k × interval` across deploys
/// and gustd restarts (even after SIGKILL). The supervisor tells it what the
/// live release declares (`adopt`) and when an app stops being served (`forget`);
/// `SchedulerService` asks it for what is due and runs each firing.
actor Scheduler {
    struct Key: Hashable, Sendable {
        var app: AppName
        var name: String
    }

    /// One schedule as gustd runs it.
    private struct Entry {
        var stored: StoredSchedule
        var spec: ScheduleSpec
        var zone: TimeZone
        var next: Date?
    }

    /// A run to make now.
    struct Firing: Sendable {
        var key: Key
        var release: Int
        var params: String?
        var due: Date
    }

    /// Every read and write runs on the thread pool, never on an event loop (StoreAccess).
    let store: StoreAccess
    let supervisor: Supervisor
    let home: GustHome
    let logRetention: LogRetention
    let timeout: Duration
    let logger: Logger
    private var entries: [Key: Entry] = [:]
    /// Schedules with a run going: the next one due is skipped, never overlapped. Apart from the
    /// entries, which a release that stops declaring one drops: its run goes on, and one declared
    /// again meanwhile must not start beside it.
    private var running: Set<Key> = []

    init(configuration: RouterConfiguration, supervisor: Supervisor, logger: Logger) throws {
        store = try StoreAccess(home: configuration.home)
        home = configuration.home
        logRetention = configuration.logRetention
        timeout = configuration.functionTimeout
        self.supervisor = supervisor
        self.logger = logger
    }

    /// Loads what the previous gustd ran, so timing survives a restart.
    func start(now: Date = Date()) async {
        if let abandoned = try? await store.run({ try $0.abandonRunningRuns(because: "gustd stopped before the run finished") }), abandoned > 0 {
            logger.notice("Marked \(abandoned) schedule runs of a previous gustd as failed")
        }
        do {
            for stored in try await store.run({ try $0.liveSchedules() }) { await install(stored, keeping: nil, now: now) }
        } catch {
            logger.error("Cannot read the stored schedules: \(error)")
        }
    }

    // MARK: What the supervisor tells it

    /// The most schedules one release may declare: each is a row gustd writes
    /// on every deploy and a timer it keeps, and one app's thousands would hold
    /// up the others.
    static let maxSchedulesPerApp = 100

    /// The schedules `manifest` declares, each checked with GustCore's parser,
    /// and the app's zone for cron. Throws a message naming the function and
    /// its spec, or the limit, which rejects the deploy before any switch.
    static func declared(by manifest: FunctionManifest, app: AppName, release: Int, config: [String: String]) throws(GustError) -> [StoredSchedule] {
        guard manifest.schedules.count <= maxSchedulesPerApp else {
            throw GustError(
                "v\(release) declares \(manifest.schedules.count) schedules; an app may have at most \(maxSchedulesPerApp). "
                    + "Run several tasks from one schedule instead."
            )
        }
        let needsZone = manifest.schedules.contains { $0.cron != nil }
        let zone = needsZone ? try ScheduleSpec.timeZone(named: config["TZ"]) : .gmt
        var declared: [StoredSchedule] = []
        var names = Set<String>()
        for schedule in manifest.schedules {
            try checkName(schedule.name, release: release)
            // Set<String> compares as Swift does (canonical equivalence), so two byte spellings of
            // one name are one: the store would keep them apart, and every listing would not.
            guard names.insert(schedule.name).inserted else {
                throw GustError(
                    "v\(release): schedule \(schedule.name) is declared twice (one name for two functions, "
                        + "or two spellings of one name). Give each scheduled function a name of its own."
                )
            }
            let kind = schedule.every != nil ? "every" : "cron"
            guard let text = schedule.every ?? schedule.cron else {
                throw GustError("schedule \(schedule.name) has neither an every nor a cron spec in the manifest.")
            }
            _ = try ScheduleSpec.validated(function: schedule.name, kind: kind, spec: text)
            let params = schedule.params.flatMap { try? JSONEncoder.sortedKeys.encode($0) }.map { String(decoding: $0, as: UTF8.self) }
            declared.append(StoredSchedule(
                app: app, name: schedule.name, kind: kind, spec: text, params: params, anchor: Date(),
                timeZone: zone == .gmt ? "UTC" : zone.identifier, release: release
            ))
        }
        return declared
    }

    /// The longest schedule name: names are listed, logged and stored on every deploy.
    static let longestName = 128

    private static func checkName(_ name: String, release: Int) throws(GustError) {
        let problem: String? =
            if name.isEmpty { "a schedule has no name" }
            else if name.count > longestName { "schedule \(name.prefix(32))… has a name longer than \(longestName) characters" }
            else if name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                "schedule \(name.debugDescription) has a control character in its name"
            } else { nil }
        if let problem { throw GustError("v\(release): \(problem). Name the function with letters, digits and _.") }
    }

    /// Makes the app's schedules those of its live release `release`.
    func adopt(_ app: AppName, release: Int, schedules declared: [StoredSchedule], now: Date = Date()) async {
        let stored: [StoredSchedule]
        do {
            // One transaction of up to `maxSchedulesPerApp` rows.
            stored = try await store.run { try $0.replaceSchedules(app, release: release, with: declared, now: now) }
        } catch {
            logger.error("Cannot store the schedules of \(app) v\(release): \(error)")
            return
        }
        let previous = entries.filter { $0.key.app == app }
        for key in previous.keys where !stored.contains(where: { $0.name == key.name }) {
            entries[key] = nil
            logger.info("Stopped schedule \(key.name) of \(app): v\(release) no longer declares it")
        }
        for schedule in stored {
            await install(schedule, keeping: previous[Key(app: app, name: schedule.name)], now: now)
        }
    }

    /// The app is not served any more: none of its schedules run.
    func forget(_ app: AppName) {
        entries = entries.filter { $0.key.app != app }
    }

    private func install(_ stored: StoredSchedule, keeping old: Entry?, now: Date) async {
        let key = Key(app: stored.app, name: stored.name)
        guard let spec = try? ScheduleSpec(kind: stored.kind, spec: stored.spec), let zone = TimeZone(identifier: stored.timeZone) else {
            logger.warning("Schedule \(stored.name) of \(stored.app) has a spec gustd cannot read (\(stored.kind) '\(stored.spec)'); it does not run")
            entries[key] = nil
            return
        }
        var entry = Entry(stored: stored, spec: spec, zone: zone)
        let unchanged = old.map { $0.spec == spec && $0.zone == zone } ?? false
        // A run due a moment ago that has not fired yet is not lost to a redeploy.
        entry.next = unchanged ? old?.next : spec.next(after: now, anchor: stored.anchor, timeZone: zone)
        entries[key] = entry
        if entry.next != stored.nextRun { await setNextRun(key, entry.next) }
    }

    // MARK: Firing

    /// How long the service may sleep before something can be due.
    func timeUntilNextRun(now: Date = Date(), atMost limit: Duration) -> Duration {
        guard let soonest = entries.values.compactMap(\.next).min() else { return limit }
        let seconds = max(0, soonest.timeIntervalSince(now))
        return min(limit, .milliseconds(Int64(seconds * 1000)))
    }

    /// The runs due at `now`. A schedule whose previous run is still going is
    /// skipped (the skip recorded and logged); either way its next time moves on, in memory only:
    /// the store's `next_run` is written when a schedule is installed, and readers compute the
    /// rest (`StoredSchedule.upcoming(at:)`). A write per run of an every-second schedule made
    /// every private app's token checks go to the store again (`TokenVerifier`, `StoreWrites`).
    func due(now: Date = Date()) async -> [Firing] {
        var firings: [Firing] = []
        var skipped: [(key: Key, release: Int, due: Date)] = []
        // The entries change before the first await, so a call meanwhile (`forget`, `adopt`) sees them moved on.
        for (key, var entry) in entries {
            guard let next = entry.next, next <= now else { continue }
            entry.next = entry.spec.next(after: max(now, next), anchor: entry.stored.anchor, timeZone: entry.zone)
            if running.contains(key) {
                skipped.append((key, entry.stored.release, next))
            } else {
                running.insert(key)
                firings.append(Firing(key: key, release: entry.stored.release, params: entry.stored.params, due: next))
            }
            entries[key] = entry
        }
        for skip in skipped { await recordSkip(skip.key, release: skip.release, due: skip.due) }
        return firings.sorted { $0.due < $1.due }
    }

    /// What asking for a run at once found.
    enum RunNow {
        case unknown
        case busy
        case started(Firing)
    }

    /// Marks `key` running for a run made at once, unless a run of it is going already.
    func startRunNow(_ key: Key) -> RunNow {
        guard let entry = entries[key] else { return .unknown }
        guard !running.contains(key) else { return .busy }
        running.insert(key)
        return .started(Firing(key: key, release: entry.stored.release, params: entry.stored.params, due: Date()))
    }

    /// The names of an app's schedules, sorted.
    func scheduleNames(of app: AppName) -> [String] {
        entries.keys.filter { $0.app == app }.map(\.name).sorted()
    }

    /// Called when a run has ended, whatever its outcome.
    func finished(_ key: Key) {
        running.remove(key)
    }

    private func setNextRun(_ key: Key, _ next: Date?) async {
        _ = try? await store.run { try $0.setNextRun(key.app, schedule: key.name, next) }
    }

    private func recordSkip(_ key: Key, release: Int, due: Date) async {
        let reason = "skipped: the previous run was still going"
        _ = try? await store.run { try $0.recordRun(key.app, schedule: key.name, release: release, startedAt: due, status: .skipped, error: reason) }
        GustMetrics.scheduleRun(key.app, schedule: key.name, outcome: .skipped)
        await log(key, release: release, "Run due at \(Self.clockTime(due)) \(reason)")
    }

    /// Appends to the app's log file on the thread pool, off the event loops.
    func log(_ key: Key, release: Int, instance: String? = nil, stream: String = "gustd", _ line: String) async {
        let log = AppLog(home: home, app: key.app, retention: logRetention)
        let entry = LogEntry(release: release, instance: instance, stream: stream, function: "schedule \(key.name)", line: line)
        _ = try? await NIOThreadPool.singleton.runIfActive { try log.append([entry]) }
    }

    static func clockTime(_ date: Date) -> String {
        ISO8601DateFormatter.string(from: date, timeZone: .gmt, formatOptions: [.withInternetDateTime, .withFractionalSeconds])
    }
}

extension JSONEncoder {
    static var sortedKeys: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
