import Foundation
import GustBuild
import GustCore
import GustGit
import Logging
import NIOHTTP1

/// A release started and checked for a push git has not accepted yet.
///
/// Why it is kept apart from the app's slot: it must not serve until the
/// push's ref is written; `expiry` stops it if no switch comes (git refused
/// the ref, the hook died).
struct WarmRelease {
    var version: Int
    var instance: Instance
    var schedules: [StoredSchedule]
    var expiry: Task<Void, Never>
}

/// Deploying in two steps, so that a push's release serves only once git has
/// accepted the push: `warm` (asked by pre-receive) starts the release, reads
/// its manifest and checks its health without switching; `switchLive` (asked
/// by post-receive, once git wrote the ref) makes it live. A rollback or
/// config release has no ref to wait for: `deploy` does both in one call.
extension Supervisor {
    /// How long a warmed release waits for its switch before it is stopped.
    static let warmHold: Duration = .seconds(120)

    /// A release started and checked, not yet serving.
    struct Prepared {
        var version: Int
        var instance: Instance
        var schedules: [StoredSchedule]
    }

    /// Starts `version`, checks it, switches traffic to it and retires the old
    /// instance once its requests are done. Nothing changes unless all succeed.
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
        warmed[app] = WarmRelease(version: version, instance: prepared.instance, schedules: prepared.schedules, expiry: expiry)
        progress("v\(version) is ready; it serves once git has accepted the push")
        return url(of: app)
    }

    /// Makes `version` live: the warmed instance if there is one, else a new
    /// one. Never goes back: a newer live release refuses an older switch.
    func switchLive(_ app: AppName, version: Int, progress: @escaping @Sendable (String) -> Void) async throws -> String {
        try beginDeploy(app)
        defer { deploying.remove(app) }
        let live = try store.app(app)?.liveVersion
        if let live, live > version {
            if warmed[app]?.version == version { dropWarm(of: app) }
            throw GustError("v\(live) of \(app) is live already, newer than v\(version); v\(version) stays built.", code: 409)
        }
        if live == version, slots[app]?.version == version {
            progress("v\(version) is live already")
            return url(of: app)
        }
        let prepared: Prepared
        if let warm = warmed[app], warm.version == version, !warm.instance.process.hasExited {
            warmed[app] = nil
            warm.expiry.cancel()
            prepared = Prepared(version: version, instance: warm.instance, schedules: warm.schedules)
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

    /// Starts an instance of `version`, reads its manifest, checks its schedules and its health.
    private func prepare(_ app: AppName, version: Int, progress: @escaping @Sendable (String) -> Void) async throws -> Prepared {
        let release = try store.requireRelease(app, version: version)
        guard release.status != .failed else {
            throw GustError("v\(version) of \(app) failed and cannot be deployed.", hint: "`gust releases \(app)` lists the releases that built.")
        }
        let instance = try await launch(app, version: version, progress: progress)
        for line in instance.manifest.summary { progress(line) }
        do {
            // A spec gustd cannot run rejects the push here, before any switch.
            let schedules = try Scheduler.declared(by: instance.manifest, app: app, release: version, config: release.config)
            let health = try await instance.call(InstanceRequest(method: .GET, target: "/_gust/health"), timeout: configuration.startTimeout)
            guard health.status == 200 else {
                throw GustError("v\(version) failed its health check (status \(health.status)).")
            }
            progress("Health check passed")
            return Prepared(version: version, instance: instance, schedules: schedules)
        } catch {
            await instance.stop()
            throw error
        }
    }

    /// Writes the desired state first, then switches the slot and retires the old instance.
    private func goLive(_ app: AppName, _ prepared: Prepared, progress: @escaping @Sendable (String) -> Void) async throws -> String {
        let (version, instance) = (prepared.version, prepared.instance)
        let isPrivate: Bool
        do {
            isPrivate = try store.app(app)?.isPrivate ?? false
            try store.setLive(app, version: version)
        } catch {
            await instance.stop()
            throw error
        }
        let previous = slots[app]
        slots[app] = Slot(version: version, isPrivate: isPrivate, instance: instance)
        previous?.starting?.cancel()
        progress("Switched traffic to v\(version)" + (previous.map { " from v\($0.version)" } ?? ""))
        retire(previous?.instance)
        pruneReleaseDirectories(of: app, keeping: [version, previous?.version].compactMap { $0 })
        await scheduler?.adopt(app, release: version, schedules: prepared.schedules)
        return url(of: app)
    }

    private func dropWarm(of app: AppName) {
        guard let warm = warmed.removeValue(forKey: app) else { return }
        warm.expiry.cancel()
        logger.notice("Stopping warmed v\(warm.version) of \(app): a newer deploy replaces it")
        let instance = warm.instance
        Task { await instance.stop(grace: .zero) }
    }

    private func expireWarm(_ app: AppName, version: Int) async {
        guard let warm = warmed[app], warm.version == version else { return }
        warmed[app] = nil
        logger.warning("Stopping warmed v\(version) of \(app): no switch came within \(Self.warmHold.shortText) (git refused the push, or its hook died)")
        await warm.instance.stop(grace: .zero)
    }

    /// Every warmed instance, taken out (gustd is stopping).
    func dropWarmed() -> [Instance] {
        let instances = warmed.values.map { warm in
            warm.expiry.cancel()
            return warm.instance
        }
        warmed = [:]
        return instances
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
