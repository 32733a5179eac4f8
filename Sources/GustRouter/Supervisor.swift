import Foundation
import GustBuild
import GustCore
import Logging
import NIOCore
import NIOHTTP1

/// Makes the running world match the database: which release of each app is
/// live. Owns the instances; the gateway asks it for one per request.
///
/// Desired state is only ever written to the database (deploys write it here
/// too, before switching), so a restarted gustd converges to the same world.
actor Supervisor {
    /// What gustd serves for one app.
    private struct Slot {
        var version: Int
        var isPrivate: Bool
        var instance: Instance?
        var starting: Task<Instance, any Error>?
    }

    private let configuration: RouterConfiguration
    private let store: Store
    private let records: InstanceRecords
    private let logger: Logger
    private var slots: [AppName: Slot] = [:]
    private var deploying: Set<AppName> = []
    private var publicPort: Int
    /// Told which schedules each live release declares, and when an app stops being served.
    private var scheduler: Scheduler?
    /// Instances' secrets for the records channel (`gust.records`).
    nonisolated let channelTokens = RecordsChannelTokens()

    init(configuration: RouterConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        store = try Store(home: configuration.home)
        records = InstanceRecords(home: configuration.home)
        try records.prepare()
        publicPort = configuration.httpPort
    }

    // MARK: Life cycle

    /// Stops what a previous gustd left behind, then starts every live release.
    func start() async {
        for orphan in records.sweepOrphans() {
            logger.notice("Stopped instance \(orphan.id) of \(orphan.app) v\(orphan.version) left by a previous gustd (pid \(orphan.pid))")
        }
        await reconcile()
    }

    func stopAll() async {
        let instances = slots.values.compactMap(\.instance)
        slots = [:]
        await withTaskGroup(of: Void.self) { group in
            for instance in instances { group.addTask { await instance.stop(grace: self.configuration.stopGrace) } }
        }
    }

    func setPublicPort(_ port: Int) { publicPort = port }

    func attach(_ scheduler: Scheduler) { self.scheduler = scheduler }

    func url(of app: AppName) -> String {
        let port = publicPort == 80 ? "" : ":\(publicPort)"
        return "http://\(app).\(configuration.domain)\(port)/"
    }

    /// Reads the database and converges: new live versions start, removed apps stop.
    func reconcile() async {
        let apps: [App]
        do { apps = try store.apps() } catch {
            logger.error("Cannot read the apps to reconcile: \(error)")
            return
        }
        let wanted = Dictionary(uniqueKeysWithValues: apps.map { ($0.name, $0) })
        var unserved: [AppName] = []
        for (name, slot) in slots where !deploying.contains(name) {
            guard let app = wanted[name], let live = app.liveVersion else {
                slots[name] = nil
                retire(slot.instance)
                unserved.append(name)
                continue
            }
            slots[name]?.isPrivate = app.isPrivate
            if live != slot.version {
                slots[name] = Slot(version: live, isPrivate: app.isPrivate)
                retire(slot.instance)
            }
        }
        for app in apps where slots[app.name] == nil && !deploying.contains(app.name) {
            if let live = app.liveVersion { slots[app.name] = Slot(version: live, isPrivate: app.isPrivate) }
        }
        for name in unserved { await scheduler?.forget(name) }
        // Warm every live release now rather than on its first request.
        for name in slots.keys where slots[name]?.instance == nil {
            Task { _ = try? await self.instance(for: name) }
        }
    }

    // MARK: Serving

    struct AppState: Sendable {
        var version: Int
        var isPrivate: Bool
        var instance: Instance?
    }

    /// What the gateway needs to know before it calls: nil if the app has nothing live.
    func state(of app: AppName) -> AppState? {
        slots[app].map { AppState(version: $0.version, isPrivate: $0.isPrivate, instance: $0.instance) }
    }

    /// Every app gustd serves, for `GET /v1/status`.
    func status() -> [[String: any Sendable]] {
        slots.keys.sorted().map { app in
            let slot = slots[app]!
            var entry: [String: any Sendable] = ["app": app.rawValue, "version": slot.version, "private": slot.isPrivate]
            if let instance = slot.instance {
                entry["instance"] = instance.id
                entry["pid"] = Int(instance.process.pid)
            }
            return entry
        }
    }

    func verifyToken(_ app: AppName, _ secret: String) -> Bool {
        (try? store.verifyToken(app, secret: secret)) ?? false
    }

    func hasApp(_ app: AppName) -> Bool { (try? store.app(app)) != nil }

    /// The running instance of the app's live release, started on demand.
    func instance(for app: AppName) async throws -> Instance {
        guard let slot = slots[app] else { throw GustError.notFound("\(app) has no live release: push to deploy it.") }
        if let instance = slot.instance { return instance }
        if let starting = slot.starting { return try await starting.value }
        let version = slot.version
        let task = Task { try await self.launch(app, version: version, progress: nil) }
        slots[app]?.starting = task
        do {
            let instance = try await task.value
            if slots[app]?.version == version {
                slots[app]?.starting = nil
                slots[app]?.instance = instance
                await announceSchedules(of: instance)
            } else {
                retire(instance)  // a deploy switched the app meanwhile
            }
            return instance
        } catch {
            if slots[app]?.version == version { slots[app]?.starting = nil }
            logger.error("\(app) v\(version) could not start: \(error)")
            throw GustError("\(app) v\(version) could not start; see `gust logs \(app)`.", code: 503)
        }
    }

    /// Takes an instance out of service at once (it hung or lost its connection).
    func discard(_ instance: Instance, because reason: String) {
        logger.warning("Replacing instance \(instance.id) of \(instance.app) v\(instance.version): \(reason)")
        if slots[instance.app]?.instance === instance { slots[instance.app]?.instance = nil }
        Task { await instance.stop(grace: .zero) }
    }

    private func instanceExited(id: String, app: AppName, status: Int32) {
        guard let current = slots[app]?.instance, current.id == id else { return }
        slots[app]?.instance = nil
        logger.warning("Instance \(id) of \(app) \(InstanceProcess.describe(status)); the next request starts another")
        try? AppLog(home: configuration.home, app: app).append([
            LogEntry(release: current.version, instance: id, stream: "gustd", function: nil, line: "Instance \(id) \(InstanceProcess.describe(status))")
        ])
    }

    // MARK: Deploying

    /// Starts `version`, checks it, switches traffic to it and retires the old
    /// instance once its requests are done. Nothing changes unless all succeed.
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
        let instance = try await launch(app, version: version, progress: progress)
        for line in instance.manifest.summary { progress(line) }
        let isPrivate: Bool
        let schedules: [StoredSchedule]
        do {
            // A spec gustd cannot run rejects the push here, before any switch.
            schedules = try Scheduler.declared(by: instance.manifest, app: app, release: version, config: release.config)
            let health = try await instance.call(InstanceRequest(method: .GET, target: "/_gust/health"), timeout: configuration.startTimeout)
            guard health.status == 200 else {
                throw GustError("v\(version) failed its health check (status \(health.status)).")
            }
            progress("Health check passed")
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
        await scheduler?.adopt(app, release: version, schedules: schedules)
        return url(of: app)
    }

    /// Removes the unpacked directories of an app's releases other than the
    /// live one and the one it replaced (still draining, and the likely
    /// rollback), and leftovers of an unpack a crash cut short. The artifacts
    /// stay: a rollback unpacks its release again. Each directory is first
    /// renamed out of the way (at once, so a start of that release unpacks it
    /// afresh) and then deleted off the event loops.
    private func pruneReleaseDirectories(of app: AppName, keeping versions: [Int]) {
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

    /// Runs blocking file work on a thread of its own: gustd's tasks run on
    /// SwiftNIO's event loops, which must never block (see InstanceProcess
    /// for why not Dispatch's global queues).
    static func offTheLoops(_ work: @escaping @Sendable () throws -> Void) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
        }
    }

    /// Tells the scheduler what a live instance's release declares (after a
    /// gustd restart, the first instance of each live release does this).
    private func announceSchedules(of instance: Instance) async {
        guard let scheduler else { return }
        do {
            let release = try store.requireRelease(instance.app, version: instance.version)
            let declared = try Scheduler.declared(by: instance.manifest, app: instance.app, release: instance.version, config: release.config)
            await scheduler.adopt(instance.app, release: instance.version, schedules: declared)
        } catch {
            logger.error("The schedules of \(instance.app) v\(instance.version) cannot run: \(error)")
        }
    }

    /// Lets an instance finish what it is serving, then stops it.
    private func retire(_ instance: Instance?) {
        guard let instance else { return }
        let grace = configuration.stopGrace
        Task {
            await instance.drained()
            await instance.stop(grace: grace)
        }
    }

    private func launch(_ app: AppName, version: Int, progress: (@Sendable (String) -> Void)?) async throws -> Instance {
        let release = try store.requireRelease(app, version: version)
        guard let digest = release.artifact, let process = release.process else {
            throw GustError("v\(version) of \(app) has no artifact to run.")
        }
        let home = configuration.home
        let directory = home.release(app, version: version)
        if !FileManager.default.fileExists(atPath: directory.path) {
            progress?("Unpacking v\(version) (\(ByteCount(release.artifactSize ?? 0)))")
            let artifact = home.artifact(digest: digest, fileExtension: Artifacts.fileExtension)
            do {
                try await Self.offTheLoops { try Artifacts.unpack(artifact, to: directory) }
            } catch where FileManager.default.fileExists(atPath: directory.path) {
                // Another start of the same release unpacked it meanwhile.
            }
        }
        let command = process.trimmingCharacters(in: .whitespaces)
        guard !command.hasPrefix("/"), !command.split(separator: "/").contains(".."),
            FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent(command).path)
        else {
            throw GustError("v\(version)'s web process `\(command)` is not an executable inside the slug.")
        }

        let id = String(UUID().uuidString.lowercased().prefix(8))
        let socketPath = records.socketPath(id: id)
        let secrets = release.secretNames.compactMap { release.config[$0] }
        let output = InstanceOutput(log: AppLog(home: home, app: app), version: version, id: id, secrets: secrets)
        output.relay(to: progress)

        let channelToken = channelTokens.issue(for: app)
        progress?("Starting instance \(id) of v\(version)")
        let child = try InstanceProcess(
            executable: directory.appendingPathComponent(command).path,
            environment: environment(app: app, release: release, directory: directory, socketPath: socketPath, id: id, channelToken: channelToken),
            directory: directory.path,
            onOutput: { output.deliver($0, stream: $1.rawValue) },
            onExit: { status in Task { await self.instanceExited(id: id, app: app, status: status) } }
        )
        try? records.remember(.init(id: id, pid: child.pid, startTime: child.startTime, app: app.rawValue, version: version))

        do {
            let connection = try await connect(to: socketPath, child: child, version: version)
            let manifest = try await readManifest(connection, version: version)
            output.relay(to: nil)
            let instance = Instance(
                id: id, app: app, version: version, manifest: manifest, process: child,
                socketPath: socketPath, connection: connection, records: records, output: output,
                onStop: { [channelTokens] in channelTokens.revoke(channelToken) }
            )
            channelTokens.attach(channelToken, to: instance)
            return instance
        } catch {
            await child.stop(grace: .seconds(1))
            channelTokens.revoke(channelToken)
            output.relay(to: nil)
            records.forget(id: id)
            throw error
        }
    }

    /// The environment of an instance: the release's config vars and Gust's own,
    /// nothing else of gustd's (no GUST_HOME, no credentials of the daemon).
    private func environment(
        app: AppName, release: Release, directory: URL, socketPath: String, id: String, channelToken: String
    ) -> [String: String] {
        let inherited = ProcessInfo.processInfo.environment
        var environment = release.config
        environment["PATH"] = inherited["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        environment["LANG"] = environment["LANG"] ?? inherited["LANG"] ?? "C.UTF-8"
        environment["HOME"] = directory.path
        environment["GUST_APP"] = app.rawValue
        environment["GUST_RELEASE"] = "v\(release.version)"
        environment["GUST_INSTANCE"] = id
        environment["GUST_SOCKET"] = socketPath
        environment["GUST_RECORDS_SOCKET"] = configuration.home.recordsSocket.path
        environment["GUST_RECORDS_TOKEN"] = channelToken
        return environment
    }

    private func connect(to socketPath: String, child: InstanceProcess, version: Int) async throws -> InstanceConnection {
        let deadline = ContinuousClock.now + configuration.startTimeout
        while ContinuousClock.now < deadline {
            if child.hasExited {
                let status = await child.exitStatus()
                throw GustError("v\(version) \(InstanceProcess.describe(status)) while starting; its output is above.")
            }
            if FileManager.default.fileExists(atPath: socketPath),
                let connection = try? await InstanceConnection.connect(socketPath: socketPath)
            {
                return connection
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw GustError("v\(version) did not answer within \(configuration.startTimeout.shortText) of starting.", code: 503)
    }

    private func readManifest(_ connection: InstanceConnection, version: Int) async throws -> FunctionManifest {
        let response: InstanceResponse
        let request = InstanceRequest(method: .GET, target: "/_gust/manifest")
        do {
            response = try await connection.send(request, timeout: configuration.startTimeout, maxBodyBytes: FunctionManifest.maxBytes)
        } catch InstanceCallError.tooLarge {
            throw GustError(
                "v\(version)'s manifest is larger than 1 MiB (\(FunctionManifest.maxBytes) bytes): it registers too many functions or too long names."
            )
        } catch {
            throw GustError("v\(version) did not answer its manifest: \(error)")
        }
        guard response.status == 200, let manifest = try? await FunctionManifest.decodeOffTheLoops(response.body) else {
            throw GustError("v\(version) answered its manifest with status \(response.status) and no manifest Gust can read.")
        }
        guard manifest.protocolVersion == FunctionManifest.supportedProtocol else {
            throw GustError("v\(version)'s runtime speaks protocol \(manifest.protocolVersion); this gustd speaks \(FunctionManifest.supportedProtocol).")
        }
        return manifest
    }
}
