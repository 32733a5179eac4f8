import Foundation
import GustBuild
import GustCore
import Logging
import NIOHTTP1
import Synchronization

extension Supervisor {
    /// Starts `version` in a pool of its own, as large as the pool serving now,
    /// checks it, switches traffic to it and drains the old pool (its calls in
    /// flight finish; calls still waiting move to the new pool). Nothing
    /// changes unless all succeed.
    func deploy(_ app: AppName, version: Int, progress: @escaping @Sendable (String) -> Void) async throws -> String {
        guard !deploying.contains(app) else {
            throw GustError("A deploy of \(app) is already running; wait for it to finish.", code: 409)
        }
        deploying.insert(app)
        defer { deploying.remove(app) }

        let release = try store.requireRelease(app, version: version)
        guard release.status != .failed else {
            throw GustError("v\(version) of \(app) failed and cannot be deployed.", hint: "`gust releases \(app)` lists the releases that built.")
        }
        let isPrivate = try store.app(app)?.isPrivate ?? false
        let route = try makeRoute(app, version: version, isPrivate: isPrivate)
        let previous = routes.withLock { $0[app] }
        // Under load the new release must take as many calls as the old one the moment it switches.
        let size = max(previous.map { Self.serving($0.pool.snapshot) } ?? 0, 1)
        route.launcher.relayProgress(to: progress)
        let schedules: [StoredSchedule]
        do {
            route.pool.warm(to: size)
            let lease = try await firstInstance(of: route, version: version)
            let instance = lease.member
            for line in instance.manifest.summary { progress(line) }
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
            try store.setLive(app, version: version)
        } catch {
            route.launcher.relayProgress(to: nil)
            route.pool.drain()
            throw error
        }
        route.launcher.relayProgress(to: nil)
        routes.withLock { $0[app] = route }
        progress("Switched traffic to v\(version)" + (previous.map { " from v\($0.version)" } ?? ""))
        if let previous { retire(previous, of: app) }
        pruneReleaseDirectories(of: app, keeping: [version, previous?.version].compactMap { $0 })
        await scheduler?.adopt(app, release: version, schedules: schedules)
        return url(of: app)
    }

    /// Instances that answer calls (idle or busy).
    static func serving(_ snapshot: (counts: (starting: Int, idle: Int, busy: Int, draining: Int), waiting: Int, crashing: String?)) -> Int {
        snapshot.counts.idle + snapshot.counts.busy
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
            }
        }
    }

    /// Waits until `size` instances of the new release answer (bounded by the start limit).
    private func warmed(_ route: Route, to size: Int, progress: @Sendable (String) -> Void) async throws {
        guard size > 1 else { return }
        let deadline = ContinuousClock.now + configuration.startTimeout
        while Self.serving(route.pool.snapshot) < size {
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
                do { try FileManager.default.removeItem(at: path) } catch { logger.warning("Cannot remove \(path.path): \(error)") }
            }
        }
    }
}
