import Foundation
import GustBuild
import GustCore
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// Turns "an instance of release vN of app A" into a running process with a
/// socket, its manifest read: unpack the release (once), make its environment,
/// spawn the web process, connect, read `GET /_gust/manifest`.
///
/// The direct launcher runs the process as gustd's own user; the sandboxed
/// one (bubblewrap, an app's own uid, cgroup limits) is the next launcher
/// behind the same `PoolLauncher` protocol. One launcher serves one pool.
final class DirectLauncher: PoolLauncher {
    let app: AppName
    let release: Release
    let configuration: RouterConfiguration
    let records: InstanceRecords
    private let channelTokens: RecordsChannelTokens
    let logger: Logger
    let limitMechanism: LimitMechanism?
    /// The app's log rate bound, shared with its other releases' instances.
    private let logThrottle: LogThrottle?
    /// The app's limits now: read at each start, so a `gust limits` change applies to the next instance.
    let limits: @Sendable () async -> AppLimits
    /// Where start-up output also goes while a deploy watches (the pusher's terminal).
    let progress = Mutex<(@Sendable (String) -> Void)?>(nil)
    /// Forks this release's Python instances (DirectLauncher+Zygote); nil for Node.
    let zygote: ReleaseZygote?
    /// The manifest of the first instance that started: every instance of a release registers the same functions.
    private let firstManifest = Mutex<FunctionManifest?>(nil)
    /// Told the manifest once, when the first instance has started.
    private let onFirstStart: @Sendable (FunctionManifest) async -> Void
    /// Starts the process: as gustd's user, or sandboxed (`SandboxSpawner`).
    let spawner: any InstanceSpawner
    /// gustd's unpacks under way: starts of the same release at once unpack it once.
    private let unpacks: ReleaseUnpacks
    /// How long a start waits for what the app printed while it imported to reach the deploy's
    /// progress. Nothing waits unless lines are still in the pipes; then only their reader's turn.
    static let startOutputWait: Duration = .seconds(2)

    init(
        app: AppName, release: Release, configuration: RouterConfiguration, records: InstanceRecords,
        channelTokens: RecordsChannelTokens, unpacks: ReleaseUnpacks, logger: Logger, spawner: (any InstanceSpawner)? = nil,
        limitMechanism: LimitMechanism? = nil, limits: @escaping @Sendable () async -> AppLimits = { AppLimits() },
        logThrottle: LogThrottle? = nil, onFirstStart: @escaping @Sendable (FunctionManifest) async -> Void = { _ in }
    ) {
        self.spawner = spawner ?? DirectSpawner(records: records, home: configuration.home)
        self.onFirstStart = onFirstStart
        self.limitMechanism = limitMechanism
        self.limits = limits
        self.logThrottle = logThrottle
        self.app = app
        self.release = release
        self.configuration = configuration
        self.records = records
        self.channelTokens = channelTokens
        self.unpacks = unpacks
        self.logger = logger
        // Under a sandbox the zygote runs in a sandbox of the app's, and its forks with it
        // (docs/security.md, "The sandbox with limits and zygotes").
        zygote = Self.makeZygote(app: app, release: release, configuration: configuration, logger: logger)
    }

    var version: Int { release.version }

    /// A Node instance takes up to the app's concurrency at once; a Python one runs one call at a time.
    var takesConcurrentCalls: Bool { release.buildpack == "node" }

    var manifest: FunctionManifest? { firstManifest.withLock { $0 } }

    func relayProgress(to progress: (@Sendable (String) -> Void)?) {
        self.progress.withLock { $0 = progress }
    }

    // MARK: PoolLauncher

    func launch() async throws -> Instance {
        let progress = self.progress.withLock { $0 }
        try checkStack()
        let directory = try await unpack(progress: progress)
        guard let process = release.process else { throw GustError("v\(version) of \(app) has no web process to run.") }
        let command = process.trimmingCharacters(in: .whitespaces)
        guard !command.hasPrefix("/"), !command.split(separator: "/").contains(".."),
            FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent(command).path)
        else {
            throw GustError("v\(version)'s web process `\(command)` is not an executable inside the slug.")
        }

        let id = String(UUID().uuidString.lowercased().prefix(8))
        let bindsOwnSocket = !release.passesListener
        // Secrets are decrypted here only, into the instance's environment (and the masks of its output).
        let config = try release.openedConfig(home: configuration.home)
        // A Python instance is a fork of its release's zygote when it can be. When none is resident the
        // zygote starts now, and this launch prepares the instance and asks for its fork while the
        // zygote imports the app, so that the fork follows the import at once instead of a round trip
        // later (docs/benchmarks.md, "A cold start's fork asked for during the import").
        let early = EarlyStart()
        let resident: Zygote?
        do {
            resident = try await residentZygote(command: command, directory: directory) { [self] zygote in
                let prepared: Result<PreparedInstance, any Error>
                do { prepared = .success(try await prepare(id: id, config: config, progress: progress)) } catch { prepared = .failure(error) }
                early.set(prepared: prepared)
                guard zygote.takesRequestsWhileImporting, let prepared = try? prepared.get(),
                    let layout = try? spawner.forkLayout(id: id, zygote: zygote.id, release: directory, bindsOwnSocket: bindsOwnSocket),
                    let asked = askFork(zygote, of: prepared, layout: layout)
                else { return }
                early.set(asked: asked, layout: layout)
            }
        } catch {
            early.discard()  // a fork's socket directory made meanwhile goes with its zygote's
            throw error
        }
        let (madeEarly, askedEarly) = early.take()
        var layout: InstanceLayout
        let asked: Zygote.AskedFork?
        if let askedEarly, let resident, askedEarly.asked.zygote === resident {
            (asked, layout) = askedEarly
        } else {
            askedEarly?.asked.abandon()  // its zygote is not kept (it cannot be forked, or the pool stopped)
            asked = nil
            do {
                layout = try resident.map { try spawner.forkLayout(id: id, zygote: $0.id, release: directory, bindsOwnSocket: bindsOwnSocket) }
                    ?? spawner.layout(id: id, release: directory, bindsOwnSocket: bindsOwnSocket)
            } catch {
                (try? madeEarly?.get())?.discard()
                forget(id, forkedFrom: resident)
                throw error
            }
        }
        let prepared: PreparedInstance
        do {
            if let madeEarly { prepared = try madeEarly.get() } else { prepared = try await prepare(id: id, config: config, progress: progress) }
        } catch {
            forget(id, forkedFrom: resident)
            throw error
        }
        let output = prepared.output
        let log = output.log
        let confinedBy = prepared.cgroup
        let exited: @Sendable (Int32) -> Void = { [self, version, logger, app] _ in
            forget(id, forkedFrom: resident)  // now, not at the next gustd's start
            output.finish()
            guard let cgroup = confinedBy else { return }
            cgroup.finish()
            if cgroup.wasOutOfMemory {
                let line = "Instance \(id) ran \(cgroup.outOfMemoryText): the kernel killed it; the next call starts a new one"
                logger.warning("\(app) v\(version): \(line)")
                try? log.append([LogEntry(release: version, instance: id, stream: "gustd", function: nil, line: line)])
            }
        }
        let child: InstanceProcess
        do {
            let asked = asked ?? resident.flatMap { askFork($0, of: prepared, layout: layout) }
            if let asked, let forked = await takeFork(asked, output: output, onExit: exited) {
                child = forked
            } else {
                if resident != nil {  // the fork failed: a process of its own, with a socket directory of its own
                    forget(id, forkedFrom: resident)
                    layout = try spawner.layout(id: id, release: directory, bindsOwnSocket: bindsOwnSocket)
                }
                // Its socket, bound here and handed over (`GUST_LISTEN_FD`): gustd's copy closes once
                // it is spawned, so that the instance's exit resets a connection waiting on it.
                let listener = try listeningSocket(layout)
                defer { listener.map { _ = close($0) } }
                var environment = environment(
                    config: config, layout: layout, id: id, channelToken: prepared.channelToken, internalToken: prepared.internalToken
                )
                if listener != nil { environment["GUST_LISTEN_FD"] = String(spawner.passedDescriptor(0)) }
                child = try spawner.spawn(
                    executable: command, arguments: [], layout: layout, release: directory, environment: environment,
                    marker: InstanceStragglers.marker(id: id), confinement: prepared.confinement, passing: listener.map { [$0] } ?? [],
                    onOutput: { output.deliver($0, stream: $1.rawValue) },
                    onExit: exited
                )
            }
        } catch {
            prepared.discard()
            forget(id, forkedFrom: resident)
            throw error
        }
        child.gateOutput(by: output.throttle)
        let (channelToken, internalToken) = (prepared.channelToken, prepared.internalToken)
        let socketPath = layout.hostSocket
        try? records.remember(.init(id: id, pid: child.pid, startTime: child.startTime, app: app.rawValue, version: version))

        do {
            let connection = try await connect(to: socketPath, internalToken: internalToken, child: child, cgroup: confinedBy)
            let manifest: FunctionManifest
            do { manifest = try await readManifest(connection) } catch {
                // A socket gustd bound takes the connection before the runtime is up: a start that
                // ends (an app that cannot be imported) resets it, and is told as the exit it is.
                if !connection.isOpen, await child.hasExited(within: .seconds(1)) {
                    throw startEnded(await child.exitStatus(), cgroup: confinedBy)
                }
                throw error
            }
            // What the app printed while it imported reaches the pusher before the relay ends: the
            // manifest came over the socket and may have overtaken it.
            await child.outputIsDelivered(within: Self.startOutputWait)
            output.relay(to: nil)
            let instance = Instance(
                id: id, app: app, version: version, manifest: manifest, process: child,
                socketPath: socketPath, connection: connection, records: records, output: output, cgroup: confinedBy,
                memoryFromCgroup: spawner.isSandboxed, onStop: { [channelTokens] in channelTokens.revoke(channelToken) }
            )
            channelTokens.attach(channelToken, to: instance)
            let isFirst = firstManifest.withLock { first in
                defer { if first == nil { first = manifest } }
                return first == nil
            }
            if isFirst { await onFirstStart(manifest) }
            return instance
        } catch {
            await child.stop(grace: .seconds(1))
            await child.outputIsDelivered(within: Self.startOutputWait)  // its traceback, to the pusher
            channelTokens.revoke(channelToken)
            output.relay(to: nil)
            forget(id, forkedFrom: resident)
            throw error
        }
    }

    /// What an instance has before its process starts: its output (with the masks of its secrets),
    /// its records-channel token and internal secret, its cgroups and the limits they set.
    struct PreparedInstance: Sendable {
        let id: String
        let output: InstanceOutput
        let channelToken: String
        let internalToken: String
        let cgroup: InstanceCgroup?
        let confinement: SpawnConfinement
        /// Where `channelToken` was issued, to revoke it.
        let channelTokens: RecordsChannelTokens

        /// Undoes it for an instance that did not start.
        func discard() {
            channelTokens.revoke(channelToken)
            cgroup?.finish()
            output.relay(to: nil)
        }
    }

    /// Prepares the instance `id`: where its output goes, its secrets, its cgroups.
    private func prepare(id: String, config: [String: String], progress: (@Sendable (String) -> Void)?) async throws -> PreparedInstance {
        let output = InstanceOutput(
            log: configuration.appLog(app), version: version, id: id,
            secrets: release.secretNames.compactMap { config[$0] }, throttle: logThrottle
        )
        output.relay(to: progress)
        let channelToken = channelTokens.issue(for: app, uid: spawner.appUIDOnHost)
        progress?("Starting instance \(id) of v\(version)")
        // The app's limits are read (from the store, through the supervisor) only where they apply.
        let appLimits = limitMechanism == nil ? AppLimits() : await limits()
        var cgroup: InstanceCgroup?
        do {
            if let limitMechanism { cgroup = try InstanceCgroup(mechanism: limitMechanism, app: app, id: id, limits: appLimits) }
        } catch {
            channelTokens.revoke(channelToken)
            output.relay(to: nil)
            throw error
        }
        var confinement = cgroup?.confinement(ownUID: spawner.appUIDInside != nil) ?? SpawnConfinement()
        if limitMechanism != nil { confinement.tmpBytes = appLimits.tmp }
        return PreparedInstance(
            id: id, output: output, channelToken: channelToken, internalToken: InternalSecret.make(), cgroup: cgroup,
            confinement: confinement, channelTokens: channelTokens
        )
    }

    /// What the launch that starts a zygote made for its instance while the zygote imported the app.
    private final class EarlyStart: Sendable {
        private let made = Mutex<(prepared: Result<PreparedInstance, any Error>?, asked: (asked: Zygote.AskedFork, layout: InstanceLayout)?)>((nil, nil))

        func set(prepared: Result<PreparedInstance, any Error>) { made.withLock { $0.prepared = prepared } }
        func set(asked: Zygote.AskedFork, layout: InstanceLayout) { made.withLock { $0.asked = (asked, layout) } }

        /// What was made, handed over once.
        func take() -> (Result<PreparedInstance, any Error>?, (asked: Zygote.AskedFork, layout: InstanceLayout)?) {
            made.withLock { made in
                defer { made = (nil, nil) }
                return made
            }
        }

        /// Undoes what was made, for a launch that ends here.
        func discard() {
            let (prepared, asked) = take()
            asked?.asked.abandon()
            (try? prepared?.get())?.discard()
        }
    }

    /// Says in gustd's log and the app's why the release did not start and when it is tried again.
    func failedToStart(_ message: String, inARow failures: Int, nextTry: Duration) {
        let line = "v\(version) could not start (\(failures) in a row): \(message); next start in \(nextTry.shortText) at the earliest"
        logger.error("\(app) \(line)")
        try? configuration.appLog(app).append([
            LogEntry(release: version, instance: nil, stream: "gustd", function: nil, line: line)
        ])
    }

    /// The release's zygote, stopped `zygote-idle` (4 × the pool's `idle`) after its last instance, and with the pool.
    func upkeep(settings: @escaping @Sendable () -> PoolSettings) async {
        await zygote?.upkeep { ZygoteLifecycle.zygoteIdle(forIdle: settings().idle) }
    }

    func stop(_ instance: Instance) async {
        await instance.stop(grace: configuration.stopGrace)
    }

    /// Returns when the instance's process has exited; a crash (an exit gustd
    /// did not ask for) is written to the app's log and gustd's. So is an end that gustd's stop
    /// does not explain: a process that died during a call is stopped (its lease discarded)
    /// before its status comes, and its exit code or signal is what tells the app's owner why.
    func exited(_ instance: Instance) async {
        // Cancelled (gustd's shutdown ran past its bound): kill it rather than wait.
        let process = instance.process
        let status = await withTaskCancellationHandler {
            await process.exitStatus()
        } onCancel: {
            process.signal(SIGKILL)
        }
        guard !instance.isStopping || !InstanceProcess.isStopStatus(status) else { return }
        logger.warning("Instance \(instance.id) of \(app) v\(version) \(InstanceProcess.describe(status)); its pool replaces it when needed")
        try? configuration.appLog(app).append([
            LogEntry(release: version, instance: instance.id, stream: "gustd", function: nil, line: "Instance \(instance.id) \(InstanceProcess.describe(status))")
        ])
        await instance.stop(grace: .zero)  // its connections and files
    }

    // MARK: Steps

    /// `releases/APP/vN`, unpacked from the artifact the first time (once, by one
    /// of the starts that find it missing; the others wait for it: `ReleaseUnpacks`).
    private func unpack(progress: (@Sendable (String) -> Void)?) async throws -> URL {
        guard let digest = release.artifact else { throw GustError("v\(version) of \(app) has no artifact to run.") }
        let home = configuration.home
        let directory = home.release(app, version: version)
        if FileManager.default.fileExists(atPath: directory.path) { return directory }
        let (app, version, release, configuration) = (app, version, release, configuration)
        return try await unpacks.directory(of: .init(app: app, version: version)) {
            // An unpack that finished between the look above and now left it there.
            if FileManager.default.fileExists(atPath: directory.path) { return directory }
            // Once per release (not per instance): to the deploy's pusher, and to the app's log (a start
            // after a restore or from zero has no pusher).
            let unpacking = "Unpacking v\(version) (\(ByteCount(release.artifactSize ?? 0)))"
            progress?(unpacking)
            let artifact = home.artifact(digest: digest, fileExtension: Artifacts.fileExtension)
            do {
                try await Supervisor.offTheLoops {
                    try? configuration.appLog(app).append([LogEntry(release: version, instance: nil, stream: "gustd", function: nil, line: unpacking)])
                    try Artifacts.unpack(artifact, to: directory)
                }
            } catch where FileManager.default.fileExists(atPath: directory.path) {
                // Put there meanwhile by another process on this home (a release appears whole, by rename).
            } catch {
                let rollback = release.rollbackOf.map { " (a rollback to v\($0))" } ?? ""
                throw GustError("Cannot unpack v\(version) of \(app)\(rollback): \(error)", code: 503)
            }
            return directory
        }
    }

    /// The listening socket gustd binds at `layout.hostSocket` and hands to the instance (or to the
    /// zygote that forks it); nil for a release whose runtime binds its own (`bindsOwnSocket`).
    func listeningSocket(_ layout: InstanceLayout) throws -> Int32? {
        guard !layout.bindsOwnSocket else { return nil }
        do { return try NoFollowPath.listeningSocket(layout.hostSocket, below: records.directory.path) } catch {
            throw GustError("Cannot make the socket of v\(version)'s instance: \(error)")
        }
    }

    /// The environment of an instance: the release's config vars and Gust's own,
    /// nothing else of gustd's (no GUST_HOME, no credentials of the daemon), and none of the
    /// loader's variables (`ConfigVar.isLoaderVariable`), which a store from before they were
    /// refused may hold.
    func environment(config: [String: String], layout: InstanceLayout, id: String, channelToken: String, internalToken: String) -> [String: String] {
        let inherited = ProcessInfo.processInfo.environment
        var environment = config.filter { !ConfigVar.isLoaderVariable($0.key) }
        environment["PATH"] = layout.path
        environment["LANG"] = environment["LANG"] ?? inherited["LANG"] ?? "C.UTF-8"
        environment["HOME"] = layout.releaseDirectory
        environment["GUST_APP"] = app.rawValue
        environment["GUST_RELEASE"] = "v\(version)"
        environment["GUST_INSTANCE"] = id
        environment["GUST_SOCKET"] = layout.socket
        environment["GUST_RECORDS_SOCKET"] = layout.recordsSocket
        environment["GUST_RECORDS_TOKEN"] = channelToken
        environment[InternalSecret.environmentVariable] = internalToken
        return environment
    }

    /// Why a start ended with its process gone. A process its cgroup saw the kernel kill for memory
    /// (an import larger than `gust limits --memory`) is named so, with the limit and how to raise
    /// it; `was killed by signal 9` alone would leave the user guessing.
    func startEnded(_ status: Int32, cgroup: InstanceCgroup?) -> GustError {
        guard let cgroup, cgroup.sawOutOfMemory else {
            return GustError("v\(version) \(InstanceProcess.describe(status)) while starting; its output is above.")
        }
        // In the message rather than a hint: it reaches the push, the release's error and the logs whole.
        let raised = cgroup.limits.memory.map { LimitSize.format($0 * 2) } ?? "SIZE"
        return GustError(
            "v\(version) ran \(cgroup.outOfMemoryText) while starting: the kernel killed it as it loaded the app. "
                + "Raise the limit: gust limits \(app) --memory \(raised)"
        )
    }

    private func connect(to socketPath: String, internalToken: String, child: InstanceProcess, cgroup: InstanceCgroup?) async throws -> InstanceConnection {
        let deadline = ContinuousClock.now + configuration.startTimeout
        while ContinuousClock.now < deadline {
            if child.hasExited {
                throw startEnded(await child.exitStatus(), cgroup: cgroup)
            }
            if FileManager.default.fileExists(atPath: socketPath),
                let connection = try? await InstanceConnection.connect(
                    socketPath: socketPath, below: records.directory.path, internalToken: internalToken)
            {
                return connection
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw GustError("v\(version) did not answer within \(configuration.startTimeout.shortText) of starting.", code: 503)
    }

    private func readManifest(_ connection: InstanceConnection) async throws -> FunctionManifest {
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
        guard response.status == 200, let manifest = try? await FunctionManifest.decode(response.body) else {
            throw GustError("v\(version) answered its manifest with status \(response.status) and no manifest Gust can read.")
        }
        guard FunctionManifest.supportedProtocols.contains(manifest.protocolVersion) else {
            let speaks = FunctionManifest.supportedProtocols
            throw GustError("v\(version)'s runtime speaks protocol \(manifest.protocolVersion); this gustd speaks \(speaks.lowerBound) to \(speaks.upperBound).")
        }
        try manifest.checkBounds(version: version)
        return manifest
    }
}
