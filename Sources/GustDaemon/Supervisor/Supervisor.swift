import Foundation
import GustBuild
import GustCore
import Logging
import NIOCore
import Synchronization

/// Makes the running world match the database: which release of each app is
/// live, with how many instances. Owns a pool per served app (`Pool`, the
/// instance state machine and its launcher) and hands every pool's `run()`
/// to the service that owns their tasks.
///
/// Desired state is only ever written to the database (deploys write it here
/// too, before switching), so a restarted gustd converges to the same world.
actor Supervisor {
    typealias AppPool = Pool<DirectLauncher>

    /// What serves an app: its live release's pool. Read on every request
    /// without a hop to this actor (`route(of:)`); only this actor writes it.
    struct Route: Sendable {
        var version: Int
        var isPrivate: Bool
        var pool: AppPool
        var launcher: DirectLauncher
    }

    let configuration: RouterConfiguration
    let store: Store
    /// The store as calls read it (tokens, whether an app exists): off the event loops.
    nonisolated let requestStore: StoreAccess
    /// Private apps' and records' token checks, answered from memory while the store is unwritten.
    nonisolated let tokens: TokenVerifier
    let records: InstanceRecords
    let logger: Logger
    /// How instances are confined (`LimitMechanism.detect`); nil: not at all.
    nonisolated let limitMechanism: LimitMechanism?
    /// Each app's bound on how fast it logs.
    nonisolated let logThrottles: LogThrottles
    nonisolated let routes = Mutex<[AppName: Route]>([:])
    /// Set once shutdown begins: calls then get "gustd is stopping", not "no live release".
    nonisolated let stopping = Atomic(false)
    var deploying: Set<AppName> = []
    /// Releases started and checked by a push's pre-receive, waiting for git to accept it (Supervisor+Deploy).
    var warmed: [AppName: WarmRelease] = [:]
    private var publicPort: Int
    /// Told which schedules each live release declares, and when an app stops being served.
    var scheduler: Scheduler?
    /// Instances' secrets for the records channel (`gust.records`).
    nonisolated let channelTokens = RecordsChannelTokens()
    /// Releases being unpacked, for every launcher: a release is unpacked once however many start it at once.
    nonisolated let unpacks = ReleaseUnpacks()
    /// Builds under way (`POST /v1/build`): one per app at a time.
    nonisolated let buildTurns = BuildTurns()
    /// Calls per app per minute, for the console.
    nonisolated let callHistory = CallHistory()
    /// `callHistory` while there is a console to show it (`--console`), else nil: nothing is kept for no one.
    nonisolated var consoleHistory: CallHistory? { configuration.console == nil ? nil : callHistory }
    /// Pools to run, for `runPools()`; finished by `stopAll()`.
    private let newPools: AsyncStream<AppPool>.Continuation
    private let poolStream: AsyncStream<AppPool>
    /// Pools replaced whose instances may still be finishing calls, by app (for `gust ps`).
    private var retired: [AppName: [(version: Int, pool: AppPool)]] = [:]
    /// Each app's prepared sandbox, which its sandboxed starts enter; nil without a sandbox, or where
    /// the kernel cannot (then bwrap builds one per start).
    nonisolated let sandboxHolders: SandboxHolders?

    init(configuration: RouterConfiguration, logger: Logger, limitMechanism: LimitMechanism? = nil) throws {
        self.configuration = configuration
        self.limitMechanism = limitMechanism
        logThrottles = LogThrottles(bytesPerSecond: configuration.logBytesPerSecond)
        self.logger = logger
        store = try Store(home: configuration.home)
        // What `gust limits` shows for a field an app did not set.
        try? store.setLimitDefaults(configuration.limitDefaults)
        requestStore = try StoreAccess(home: configuration.home)
        let storeWrites = StoreWrites(home: configuration.home)
        if let failure = storeWrites.failure {
            // Still correct, only slower: every private call's token is read from the store.
            logger.notice("Cannot watch \(configuration.home.root.path) for writes of the store (inotify: \(failure)); every token check reads the store")
        }
        tokens = TokenVerifier(store: requestStore, generation: storeWrites.generation)
        records = InstanceRecords(home: configuration.home)
        try records.prepare()
        publicPort = configuration.httpPort
        (poolStream, newPools) = AsyncStream.makeStream(of: AppPool.self)
        if configuration.sandbox == nil {
            sandboxHolders = nil
        } else if let reason = SandboxHolders.unavailableReason() {
            sandboxHolders = nil
            logger.notice("sandbox starts: bubblewrap builds each instance's sandbox, because \(reason)")
        } else {
            sandboxHolders = SandboxHolders { [logger] line in logger.warning("\(line)") }
            logger.notice("sandbox starts: each enters its app's prepared sandbox, with PID, IPC and UTS namespaces of its own (bubblewrap where one cannot be prepared)")
        }
    }

    // MARK: Life cycle

    /// Stops what a previous gustd left behind, then starts every live release.
    func start() async {
        for orphan in records.sweepOrphans() {
            logger.notice("Stopped instance \(orphan.id) of \(orphan.app) v\(orphan.version) left by a previous gustd (pid \(orphan.pid))")
        }
        // Their cgroups (a killed gustd could not remove them), before any instance of this one makes its own.
        if let limitMechanism { InstanceCgroup.sweep(limitMechanism) }
        convergeReleases()
        await reconcile()
    }

    /// Runs every pool's `run()` (its launches and stops) as a child task,
    /// until `stopAll()` has drained them all: nothing outlives shutdown.
    nonisolated func runPools() async {
        await withDiscardingTaskGroup { group in
            for await pool in poolStream {
                group.addTask { await pool.run() }
            }
        }
    }

    /// Drains every pool: calls in flight finish (their instances are stopped
    /// once done, SIGKILL after the stop grace), waiting calls get 503.
    func stopAll() {
        stopping.store(true, ordering: .relaxed)
        let all = routes.withLock { routes in
            defer { routes = [:] }
            return routes.values.map(\.pool)
        }
        for pool in all + retiredPools + dropWarmed() { pool.drain() }
        newPools.finish()
        sandboxHolders?.stopAll()
    }

    /// Every pool's held calls (WebSockets) let go: the listeners are about to drain for a next
    /// gustd, and would wait for them.
    func letHeldCallsGo() {
        for pool in routes.withLock({ $0.values.map(\.pool) }) + retiredPools { pool.letHeldCallsGo() }
    }

    /// The pools of releases switched away from, still finishing their calls.
    private var retiredPools: [AppPool] { retired.values.flatMap { $0.map(\.pool) } }

    func setPublicPort(_ port: Int) { publicPort = port }

    func attach(_ scheduler: Scheduler) { self.scheduler = scheduler }

    /// Runs one schedule of the app's live release now; why it failed, or nil.
    func runSchedule(_ app: AppName, name: String) async throws -> String? {
        guard let scheduler else { throw GustError("gustd runs no schedules.", code: 503) }
        return try await scheduler.runNow(app, schedule: name)
    }

    func url(of app: AppName) -> String {
        let port = publicPort == 80 ? "" : ":\(publicPort)"
        return "http://\(app).\(configuration.domain)\(port)/"
    }

    /// Reads the database and converges: new live versions start, removed
    /// apps stop, changed scale rules and visibility apply.
    func reconcile() async {
        let apps: [App]
        do { apps = try store.apps() } catch {
            logger.error("Cannot read the apps to reconcile: \(error)")
            return
        }
        let wanted = Dictionary(uniqueKeysWithValues: apps.map { ($0.name, $0) })
        var unserved: [AppName] = []
        for (name, route) in routes.withLock({ $0 }) where !deploying.contains(name) {
            guard let app = wanted[name], let live = app.liveVersion else {
                routes.withLock { $0[name] = nil }
                retire(route, of: name)
                unserved.append(name)
                continue
            }
            if live != route.version {
                routes.withLock { $0[name] = nil }
                retire(route, of: name)
                continue
            }
            routes.withLock { $0[name]?.isPrivate = app.isPrivate }
            route.pool.update(settings(of: name, launcher: route.launcher))
        }
        for name in unserved {
            // Its prepared sandbox: the instances still finishing keep their own namespaces.
            sandboxHolders?.stop(app: name.rawValue)
            await scheduler?.forget(name)
            callHistory.forget(name)  // a destroyed app's ring goes with it
        }
        // A destroyed app's instances are stopped now, not let finish their calls: `gust apps destroy`
        // removes its data and logs once this returns, and an instance that went on (a call's
        // 15 s, a hook's up to 5 min) made both anew, for the next app under the name to find.
        await stopInstances(of: unserved.filter { wanted[$0] == nil })
        for app in apps where !deploying.contains(app.name) && routes.withLock({ $0[app.name] == nil }) {
            guard let live = app.liveVersion else { continue }
            do {
                let route = try makeRoute(app.name, version: live, isPrivate: app.isPrivate, announcingSchedules: true)
                routes.withLock { $0[app.name] = route }
                route.pool.warm(to: 0)  // its `min`: scaled to zero starts nothing
            } catch {
                logger.error("\(app.name) v\(live) cannot be served: \(error)")
            }
        }
    }

    /// A pool for release `version` of `app`, running (its tasks in `runPools`).
    /// A release that is live already (gustd restarted) tells the scheduler its
    /// schedules when its first instance starts; a deploy does so at the switch.
    func makeRoute(_ app: AppName, version: Int, isPrivate: Bool, announcingSchedules: Bool = false) throws -> Route {
        let release = try store.requireRelease(app, version: version)
        let sandboxed = try configuration.sandbox.map {
            // On the release's stack, if it was built on one (its root checked at each start, `DirectLauncher.launch`).
            try SandboxSpawner(
                sandbox: $0.on(root: release.stackReference.map { Stack.rootfs(of: $0, in: configuration.home).path }),
                records: records, home: configuration.home, app: store.appNumber(app), named: app.rawValue,
                holders: sandboxHolders
            )
        }
        // Its prepared sandbox, made now in the background (at gustd's start, at a deploy) so that its first start only enters it.
        // Here because every way gustd comes to serve a release makes its route here (start, deploy, warm, a live version
        // changed by reconcile), and a holder is per app and system root: a release on another stack needs its own. An
        // app whose holder exists or is being made costs a lookup (`HolderMakings.prepare`).
        sandboxed?.prepareHolder()
        let spawner: (any InstanceSpawner)? = sandboxed
        let launcher = DirectLauncher(
            app: app, release: release, configuration: configuration, records: records,
            channelTokens: channelTokens, unpacks: unpacks, logger: logger, spawner: spawner, limitMechanism: limitMechanism,
            limits: { [weak self] in await self?.limits(of: app) ?? AppLimits() }, logThrottle: logThrottles.throttle(for: app),
            onFirstStart: { [weak self] manifest in
                if announcingSchedules { await self?.announceSchedules(of: app, version: version, manifest: manifest) }
            }
        )
        let pool = AppPool(settings: settings(of: app, launcher: launcher), launcher: launcher)
        newPools.yield(pool)
        return Route(version: version, isPrivate: isPrivate, pool: pool, launcher: launcher)
    }

    /// The limits of the app's next instance: `gust limits`, else gustd's defaults.
    func limits(of app: AppName) -> AppLimits {
        ((try? store.limits(app)) ?? AppLimits()).over(configuration.limitDefaults)
    }

    /// The app's scale rules as its pool applies them: a Python release takes one call at a time.
    func settings(of app: AppName, launcher: DirectLauncher) -> PoolSettings {
        let scale = (try? store.scale(app)) ?? .standard
        return PoolSettings(
            min: scale.min, max: scale.max, concurrency: launcher.takesConcurrentCalls ? scale.concurrency : 1,
            idle: .seconds(scale.idleSeconds), queueLimit: configuration.queueLimit
        )
    }

    /// Stops every instance of `apps` at once (their calls in flight fail), their records tokens revoked
    /// first; their pools, drained already, see them exit.
    private func stopInstances(of apps: [AppName]) async {
        let members = apps.flatMap { app in pools(of: app).flatMap { $0.pool.instances.compactMap(\.member) } }
        await withTaskGroup(of: Void.self) { group in
            for member in members { group.addTask { await member.stop(grace: .milliseconds(200)) } }
        }
    }

    /// Takes a release's pool out of service: its instances finish their calls and stop.
    func retire(_ route: Route, of app: AppName) {
        route.pool.drain()
        var pools = (retired[app] ?? []).filter { !$0.pool.instances.isEmpty }
        pools.append((route.version, route.pool))
        retired[app] = pools
    }

    /// An app's pools: its live release's, then those of replaced releases still finishing, newest first.
    private func pools(of app: AppName) -> [(version: Int, pool: AppPool)] {
        let live: [(version: Int, pool: AppPool)] = routes.withLock { $0[app] }.map { [($0.version, $0.pool)] } ?? []
        return live + (retired[app] ?? []).reversed()
    }

    /// The instances of an app: its live release's, then those of replaced releases still finishing.
    func instances(of app: AppName) async -> [InstanceStatus] {
        var listed: [InstanceStatus] = []
        for (version, pool) in pools(of: app) {
            for (state, served, member) in pool.instances {
                let (name, inFlight) = Self.describe(state)
                var status = InstanceStatus(id: nil, release: version, pid: nil, state: name, served: served, inFlight: inFlight, memoryBytes: nil, uptimeSeconds: nil)
                if let member {
                    status.id = member.id
                    status.pid = Int(member.process.pid)
                    status.memoryBytes = member.memoryBytes
                    status.uptimeSeconds = (ContinuousClock.now - member.started).seconds
                }
                listed.append(status)
            }
        }
        return listed
    }

    /// Waits, at most `limit`, until what every instance of `app` has written so far is in the
    /// app's log: `gust call -v` asks after its answer, which the runtime sent after it flushed
    /// the call's lines, so that it reads them from the log instead of guessing when they arrive.
    func outputIsDelivered(of app: AppName, within limit: Duration) async {
        let members = pools(of: app).flatMap { $0.pool.instances.compactMap(\.member) }
        await withTaskGroup(of: Void.self) { group in
            for member in members { group.addTask { await member.outputIsDelivered(within: limit) } }
        }
    }

    private static func describe(_ state: PoolStateMachine.InstanceState) -> (String, Int) {
        switch state {
        case .starting: ("starting", 0)
        case .running(let inFlight): (inFlight == 0 ? "idle" : "busy", inFlight)
        case .draining(let inFlight): ("draining", inFlight)
        }
    }

    // MARK: Reading

    /// Every app gustd serves, for `GET /v1/status`.
    func status() -> [[String: any Sendable]] {
        routes.withLock { $0 }.sorted { $0.key < $1.key }.map { app, route in
            let snapshot = route.pool.snapshot
            var entry: [String: any Sendable] = [
                "app": app.rawValue, "version": route.version, "private": route.isPrivate,
                "instances": snapshot.serving, "starting": snapshot.counts.starting,
                "waiting": snapshot.waiting, "state": snapshot.state,
            ]
            if let crashing = snapshot.crashing { entry["error"] = crashing }
            return entry
        }
    }

    /// Whether `secret` is a token of the app: asked on every call of a private
    /// app and every records request, so it reads the store on the thread pool
    /// unless the store verified it lately and is unwritten since (`TokenVerifier`).
    nonisolated func verifyToken(_ app: AppName, _ secret: String) async -> Bool {
        await tokens.verify(app, secret)
    }

    /// The same for the gateway's lane, on the loop of the call's connection: never an error, a
    /// store that cannot answer refuses the token.
    nonisolated func verifyToken(_ app: AppName, _ secret: String, on loop: any EventLoop) -> EventLoopFuture<Bool> {
        tokens.verify(app, secret, on: loop)
    }

    nonisolated func hasApp(_ app: AppName) async -> Bool {
        (try? await requestStore.run { try $0.app(app) != nil }) ?? false
    }

    /// Runs blocking file work on a thread of its own (`BlockingWork.run`): gustd's tasks run on
    /// SwiftNIO's event loops, which must never block (see InstanceProcess for why not Dispatch's
    /// global queues).
    static func offTheLoops(_ work: @escaping @Sendable () throws -> Void) async throws {
        try await BlockingWork.run(work)
    }
}
