/// Whose record query runs next on the threads kept for them: at most one per
/// app at a time, and apps with queries waiting take turns, the longest
/// waiting first. An app that sends many slow queries holds one thread, and
/// waits behind every other app for its next turn; one more query than
/// `waitingLimit` is refused rather than queued without end.
///
/// A pure state machine: `RecordReads` owns one behind a lock and does what it
/// says; `Waiter` is what it resumes (a continuation there, a number in tests).
struct ReadTurns<App: Hashable, Waiter> {
    enum Arrival: Equatable {
        /// A thread is free and the app has no query running: run it now.
        case run
        /// Wait to be handed back by `finish`.
        case wait
        /// The app already has `waitingLimit` queries waiting.
        case refuse
    }

    let threads: Int
    let waitingLimit: Int
    /// The apps with a query running (one each).
    private(set) var running: Set<App> = []
    /// Each app's waiting queries, first come first.
    private var waiting: [App: [(id: Int, waiter: Waiter)]] = [:]
    /// The apps with queries waiting and none running, in the order they get a thread.
    /// Never empty while a thread is free.
    private var turns: [App] = []

    init(threads: Int, waitingLimit: Int) {
        precondition(threads > 0 && waitingLimit >= 0)
        self.threads = threads
        self.waitingLimit = waitingLimit
    }

    /// How many queries of `app` wait.
    func waitingCount(of app: App) -> Int { waiting[app]?.count ?? 0 }

    /// A query of `app` arrives; `id` names it for `withdraw`.
    mutating func arrive(_ app: App, id: Int, _ waiter: Waiter) -> Arrival {
        if running.count < threads, !running.contains(app) {
            running.insert(app)
            return .run
        }
        guard waitingCount(of: app) < waitingLimit else { return .refuse }
        waiting[app, default: []].append((id, waiter))
        if !running.contains(app), !turns.contains(app) { turns.append(app) }
        return .wait
    }

    /// A query of `app` has finished: the waiting query that runs on its thread now, if any.
    mutating func finish(_ app: App) -> Waiter? {
        guard running.remove(app) != nil else { return nil }
        if waitingCount(of: app) > 0 { turns.append(app) }  // behind the apps already waiting
        guard !turns.isEmpty else { return nil }
        let next = turns.removeFirst()
        let first = waiting[next]!.removeFirst()
        if waiting[next]!.isEmpty { waiting[next] = nil }
        running.insert(next)
        return first.waiter
    }

    /// A waiting query given up (its caller went away): its waiter, if it was still waiting.
    mutating func withdraw(_ app: App, id: Int) -> Waiter? {
        guard let index = waiting[app]?.firstIndex(where: { $0.id == id }) else { return nil }
        let waiter = waiting[app]!.remove(at: index).waiter
        if waiting[app]!.isEmpty {
            waiting[app] = nil
            turns.removeAll { $0 == app }
        }
        return waiter
    }
}
