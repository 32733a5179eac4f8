import Foundation
import GustBuild
import GustCore
import GustGit
import Logging
import NIOHTTP1
import Synchronization

/// A release started and checked for a push git has not accepted yet.
///
/// Why it is kept apart from the app's route: it must not serve until the
/// push's ref is written; `expiry` drains its pool if no switch comes (git
/// refused the ref, the hook died).
struct WarmRelease {
    var prepared: Supervisor.Prepared
    var expiry: Task<Void, Never>
}

/// Deploying in two steps, so that a push's release serves only once git has
/// accepted the push: `warm` (asked by pre-receive) starts the release's pool,
/// reads its manifest and checks its health without switching; `switchLive`
/// (asked by post-receive, once git wrote the ref) makes it live. A rollback
/// or config release has no ref to wait for: `deploy` does both in one call.
extension Supervisor {
    /// How long a warmed release waits for its switch before it is stopped.
    static let warmHold: Duration = .seconds(120)

    /// A release started in a pool of its own and checked, not yet serving.
    struct Prepared {
        var route: Route
        var schedules: [StoredSchedule]
        var version: Int { route.version }
    }

    /// Starts `version`, checks it, switches traffic to it and drains the old
    /// pool (its calls in flight finish; calls still waiting move to the new
    /// pool). Nothing changes unless all succeed.
    func deploy(_ app: AppName, version: Int, progress: @escaping @Sendable (String) -> Void) async throws -> String {
        try beginDeploy(app)
        defer { deploying.remove(app) }
        dropWarm(of: app)  // a push waiting for its switch will start its release again
        let prepared = try await prepare(app, version: version, progress: progress)
        return try await goLive(app, prepared, progress: progress)
    }

    /// Starts and checks `version` without switching to it; it waits for
    /// `switchLive` (a newer warm of the app replaces it).
    func warm(_ app: AppName, version: Int, progress: @escaping @Sendable (String) -> Void) async throws -> String {
        try beginDeploy(app)
        defer { deploying.remove(app) }
        dropWarm(of: app)
        let prepared = try await prepare(app, version: version, progress: progress)
        let expiry = Task { [weak self] in
            try? await Task.sleep(for: Self.warmHold)
            guard !Task.isCancelled else { return }
            await self?.expireWarm(app, version: version)
        }
        warmed[app] = WarmRelease(prepared: prepared, expiry: expiry)
        progress("v\(version) is ready; it serves once git has accepted the push")
        return url(of: app)
    }

    /// Makes `version` live: the warmed pool if there is one, else a new one.
    /// Never goes back: a newer live release refuses an older switch.
    func switchLive(_ app: AppName, version: Int, progress: @escaping @Sendable (String) -> Void) async throws -> String {
        try beginDeploy(app)
        defer { deploying.remove(app) }
        let live = try store.app(app)?.liveVersion
        if let live, live > version {
            if warmed[app]?.prepared.version == version { dropWarm(of: app) }
            throw GustError("v\(live) of \(app) is live already, newer than v\(version); v\(version) stays built.", code: 409)
        }
        if live == version, route(of: app)?.version == version {
            progress("v\(version) is live already")
            return url(of: app)
        }
        let prepared: Prepared
        if let warm = warmed[app], warm.prepared.version == version, warm.prepared.route.pool.snapshot.serving > 0 {
            warmed[app] = nil
            warm.expiry.cancel()
            prepared = warm.prepared
        } else {
            dropWarm(of: app)
            progress("v\(version) is not running yet: starting it")
            prepared = try await prepare(app, version: version, progress: progress)
        }
        return try await goLive(app, prepared, progress: progress)
    }

    private func beginDeploy(_ app: AppName) throws {
        guard !deploying.contains(app) else {
            throw GustError("A deploy of \(app) is already running; wait for it to finish.", code: 409)
        }
        deploying.insert(app)
    }

    /// Starts `version` in a pool of its own, as large as the pool serving now
    /// (under load the new release must take as many calls as the old one the
    /// moment it switches), reads its manifest, checks its schedules and its health.
    private func prepare(_ app: AppName, version: Int, progress: @escaping @Sendable (String) -> Void) async throws -> Prepared {
        let release = try store.requireRelease(app, version: version)
        guard release.status != .failed else {
            throw GustError("v\(version) of \(app) failed and cannot be deployed.", hint: "`gust releases \(app)` lists the releases that built.")
        }
        let isPrivate = try store.app(app)?.isPrivate ?? false
        let route = try makeRoute(app, version: version, isPrivate: isPrivate)
        let size = max(self.route(of: app).map { $0.pool.snapshot.serving } ?? 0, 1)
        route.launcher.relayProgress(to: progress)
        defer { route.launcher.relayProgress(to: nil) }
        do {
            route.pool.warm(to: size)
            let lease = try await firstInstance(of: route, version: version)
            let instance = lease.member
            for line in instance.manifest.summary { progress(line) }
            let schedules: [StoredSchedule]
            do {
                // A spec gustd cannot run rejects the push here, before any switch.
                schedules = try Scheduler.declared(by: instance.manifest, app: app, release: version, config: release.config)
                let health = try await instance.call(InstanceRequest(method: .GET, target: "/_gust/health"), timeout: configuration.startTimeout)
                guard health.status == 200 else {
                    throw GustError("v\(version) failed its health check (status \(health.status)).")
                }
            } catch {
                route.pool.release(lease)
                throw error
            }
            route.pool.release(lease)
            progress("Health check passed")
            try await warmed(route, to: size, progress: progress)
            return Prepared(route: route, schedules: schedules)
        } catch {
            route.pool.drain()
            throw error
        }
    }

    /// Writes the desired state first, then switches the route and drains the old pool.
    private func goLive(_ app: AppName, _ prepared: Prepared, progress: @escaping @Sendable (String) -> Void) async throws -> String {
        let version = prepared.version
        var route = prepared.route
        do {
            route.isPrivate = try store.app(app)?.isPrivate ?? false
            try store.setLive(app, version: version)
        } catch {
            route.pool.drain()
            throw error
        }
        let previous = routes.withLock { routes in
            defer { routes[app] = route }
            return routes[app]
        }
        progress("Switched traffic to v\(version)" + (previous.map { " from v\($0.version)" } ?? ""))
        if let previous { retire(previous, of: app) }
        pruneReleaseDirectories(of: app, keeping: [version, previous?.version].compactMap { $0 })
        pruneArtifacts(of: app, progress: progress)
        await scheduler?.adopt(app, release: version, schedules: prepared.schedules)
        return url(of: app)
    }

    private func dropWarm(of app: AppName) {
        guard let warm = warmed.removeValue(forKey: app) else { return }
        warm.expiry.cancel()
        logger.notice("Stopping warmed v\(warm.prepared.version) of \(app): a newer deploy replaces it")
        warm.prepared.route.pool.drain()
    }

    private func expireWarm(_ app: AppName, version: Int) {
        guard let warm = warmed[app], warm.prepared.version == version else { return }
        warmed[app] = nil
        logger.warning("Stopping warmed v\(version) of \(app): no switch came within \(Self.warmHold.shortText) (git refused the push, or its hook died)")
        warm.prepared.route.pool.drain()
    }

    /// Every warmed release's pool, taken out (gustd is stopping).
    func dropWarmed() -> [AppPool] {
        let pools = warmed.values.map { warm in
            warm.expiry.cancel()
            return warm.prepared.route.pool
        }
        warmed = [:]
        return pools
    }

    /// The first instance of a new release, within the start limit; its start
    /// failure (an exception at import, a crash) is the deploy's.
    private func firstInstance(of route: Route, version: Int) async throws -> AppPool.Lease {
        do {
            return try await route.pool.acquire(deadline: .now + configuration.startTimeout)
        } catch let failure as AppPool.Failure {
            switch failure.reason {
            case .cannotStart(let message, _): throw GustError(message)
            case .timedOut: throw GustError("v\(version) did not start within \(configuration.startTimeout.shortText).", code: 503)
            case .queueFull, .stopped: throw GustError("v\(version) could not be started: the deploy was interrupted.", code: 503)
            case .instanceLost: throw GustError("v\(version)'s first instance stopped as it started.", code: 503)
            }
        }
    }

    /// Waits until `size` instances of the new release answer (bounded by the start limit).
    private func warmed(_ route: Route, to size: Int, progress: @Sendable (String) -> Void) async throws {
        guard size > 1 else { return }
        let deadline = ContinuousClock.now + configuration.startTimeout
        while route.pool.snapshot.serving < size {
            if let crashing = route.pool.snapshot.crashing { throw GustError(crashing) }
            guard ContinuousClock.now < deadline else {
                throw GustError("v\(route.version) did not start \(size) instances within \(configuration.startTimeout.shortText).", code: 503)
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        progress("\(size) instances ready")
    }

    /// Tells the scheduler what the live release declares (after a gustd
    /// restart, the first instance of each live release does this; until then
    /// the schedules table, which the scheduler loads at start, is in force).
    func announceSchedules(of app: AppName, version: Int, manifest: FunctionManifest) async {
        guard let scheduler else { return }
        do {
            let release = try store.requireRelease(app, version: version)
            let declared = try Scheduler.declared(by: manifest, app: app, release: version, config: release.config)
            await scheduler.adopt(app, release: version, schedules: declared)
        } catch {
            logger.error("The schedules of \(app) v\(version) cannot run: \(error)")
        }
    }

    /// Removes the unpacked directories of an app's releases other than the
    /// live one and the one it replaced (still draining, and the likely
    /// rollback), and leftovers of an unpack a crash cut short. The artifacts
    /// stay: a rollback unpacks its release again. Each directory is first
    /// renamed out of the way (at once, so a start of that release unpacks it
    /// afresh) and then deleted off the event loops.
    func pruneReleaseDirectories(of app: AppName, keeping versions: [Int]) {
        let directory = configuration.home.releases(app)
        let keep = Set(versions.map { "v\($0)" })
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let isRelease = { (name: String) in name.hasPrefix("v") && Int(name.dropFirst()) != nil }
        // `.vN.ID.tmp` is an unpack in progress, or one a crash cut short; a kept release's may be running now.
        let unpacking = { (name: String) in name.hasPrefix(".v") && name.hasSuffix(".tmp") }
        let unpackOfKept = { (name: String) in keep.contains(String(name.dropFirst().prefix { $0 != "." })) }
        var trash: [URL] = []
        for name in names where !keep.contains(name)
            && (isRelease(name) || unpacking(name) && !unpackOfKept(name) || name.hasPrefix(".trash-")) {
            let path = directory.appendingPathComponent(name)
            if name.hasPrefix(".") { trash.append(path); continue }
            let moved = directory.appendingPathComponent(".trash-\(name)-\(UUID().uuidString.prefix(8))")
            if rename(path.path, moved.path) == 0 { trash.append(moved) }
        }
        guard !trash.isEmpty else { return }
        let (logger, doomed) = (logger, trash)
        Thread.detachNewThread {
            for path in doomed {
                // Never following a link, and emptying what the slug made read-only (its modes are kept).
                NoFollowRemoval.removeTree(at: path)
                if FileManager.default.fileExists(atPath: path.path) { logger.warning("Cannot remove all of \(path.path)") }
            }
        }
    }

    // MARK: Start-up

    /// Makes each app's releases agree with its repository before anything
    /// starts (ReleaseAcceptance has the rule), then tags what is missing. An
    /// app whose deploy lock is held (a push in progress) is left to that push.
    func convergeReleases() {
        let apps: [App]
        do { apps = try store.apps() } catch {
            logger.error("Cannot read the apps to converge: \(error)")
            return
        }
        for app in apps {
            guard let lock = FileLock(ifFree: configuration.home.lock(app.name)) else {
                logger.notice("\(app.name) has a deploy in progress; its releases are left to it")
                continue
            }
            defer { withExtendedLifetime(lock) {} }
            do {
                let repository = try GitRepository(path: configuration.home.repository(app.name).path, environment: [:])
                let outcome = try ReleaseAcceptance.converge(app.name, store: store, repository: repository)
                for version in outcome.abandoned {
                    logger.warning("\(app.name) v\(version) was never accepted by git; marked failed, it never serves")
                }
                if let promoted = outcome.promoted {
                    logger.notice("\(app.name) v\(promoted) was accepted by git but never switched to; it is live now")
                }
                try ReleaseTags.tagMissing(app.name, store: store, repository: repository)
            } catch {
                logger.error("Cannot converge the releases of \(app.name) with its repository: \(error)")
            }
        }
    }
}
