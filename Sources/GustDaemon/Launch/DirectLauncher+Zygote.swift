import Foundation
import GustBuild
import GustCore
import Logging
import Synchronization

/// Python instances forked from their release's zygote (`ReleaseZygote`,
/// `Zygote`): the rest of `launch()` (connect, manifest, instance) is the same
/// whether the process was forked or started on its own.
extension DirectLauncher {
    /// The zygote runtime ships in the slug (`.gust/runtime/gust/zygote.py`): a release
    /// built before it existed starts every instance on its own.
    static func hasZygoteRuntime(_ directory: URL) -> Bool {
        FileManager.default.fileExists(atPath: directory.appendingPathComponent(".gust/runtime/gust/zygote.py").path)
    }

    /// A zygote per Python release; nil for Node, whose runtime cannot fork (docs/functions.md, "Zygotes").
    static func makeZygote(app: AppName, release: Release, configuration: RouterConfiguration, logger: Logger) -> ReleaseZygote? {
        guard release.buildpack == "python" else { return nil }
        let version = release.version, log = configuration.appLog(app)
        return ReleaseZygote(stopGrace: configuration.stopGrace) { line in
            logger.notice("\(app) v\(version): \(line)")
            try? log.append([LogEntry(release: version, instance: nil, stream: "gustd", function: nil, line: line)])
        }
    }

    /// The release's zygote, started if none is resident; nil when the instance starts on its own
    /// (no zygote for this release, or it cannot be forked). Throws when the zygote exits while
    /// importing the app (an error an instance started on its own would hit too).
    /// - Parameter whileImporting: run by the launch that starts the zygote, once it is spawned and
    ///   before it has imported the app: that launch prepares its own instance meanwhile.
    func residentZygote(
        command: String, directory: URL, whileImporting: @escaping @Sendable (Zygote) async -> Void = { _ in }
    ) async throws -> Zygote? {
        guard let zygote else { return nil }
        guard Self.hasZygoteRuntime(directory) else {
            if zygote.lifecycle.forksInstances { zygote.bypass("its runtime was built before zygotes (push again to get one)") }
            return nil
        }
        let resident = try await zygote.resident(start: {
            try await self.startZygote(command: command, directory: directory, whileImporting: whileImporting)
        })
        // Its forks share its sandbox's /tmp: after a `gust limits --tmp` change, an instance starts
        // on its own with the new size until the zygote is replaced (zygote-idle after its last fork).
        if let resident, spawner.isSandboxed, limitMechanism != nil, await limits().tmp != resident.tmpBytes { return nil }
        return resident
    }

    /// Asks `resident` for the fork of the prepared instance, serving at `layout`
    /// (`InstanceSpawner.forkLayout`); nil when it cannot be asked (it then starts on its own).
    func askFork(_ resident: Zygote, of prepared: PreparedInstance, layout: InstanceLayout) -> Zygote.AskedFork? {
        let environment = [
            "GUST_INSTANCE": prepared.id, "GUST_SOCKET": layout.socket, "GUST_RECORDS_SOCKET": layout.recordsSocket,
            "GUST_RECORDS_TOKEN": prepared.channelToken,
        ]
        do {
            return try resident.ask(
                id: prepared.id, socketPath: layout.socket, listener: try listeningSocket(layout), environment: environment,
                internalToken: prepared.internalToken, cgroupProcs: prepared.confinement.cgroupProcs
            )
        } catch {
            forkFailed(prepared.id, error)
            return nil
        }
    }

    /// The fork asked for, once its zygote has answered; nil when it failed (the instance then starts on its own).
    func takeFork(_ asked: Zygote.AskedFork, output: InstanceOutput, onExit: @escaping @Sendable (Int32) -> Void) async -> InstanceProcess? {
        let zygote = self.zygote  // there is one: the fork was asked of it
        let forked: Zygote.Forked
        do {
            // Half the start's time at most, so that one started on its own still fits in the rest.
            forked = try await asked.answer(within: configuration.startTimeout / 2)
        } catch {
            forkFailed(asked.id, error)
            return nil
        }
        zygote?.forked()
        let resident = asked.zygote
        return InstanceProcess(
            forked: forked.pid, pidfd: forked.pidfd, stdout: forked.stdout, stderr: forked.stderr,
            marker: asked.inCgroups ? nil : InstanceStragglers.marker(id: asked.id),
            onOutput: { output.deliver($0, stream: $1.rawValue) },
            onExit: { status in
                zygote?.forkExited()
                onExit(status)
            },
            status: { resident.exitStatus(of: forked.reportedPID) }
        )
    }

    private func forkFailed(_ id: String, _ error: any Error) {
        zygote?.forkFailed(String(describing: error))
        logger.warning("\(app) v\(version): instance \(id) starts on its own: \(error)")
    }

    /// Forgets the instance `id` (its record, socket and socket directory); a fork's socket
    /// directory is inside its zygote's (`SandboxSpawner.forkLayout`).
    func forget(_ id: String, forkedFrom zygote: Zygote?) {
        records.forget(id: id)
        if let zygote, spawner.isSandboxed {
            // Inside the zygote's directory, which its app's code (still running) writes in.
            NoFollowPath.remove(records.socketDirectory(id: zygote.id) + "/" + id, below: records.directory.path)
        }
    }

    /// The Python buildpack's start script, `.gust/start`, sets four variables and execs the release's
    /// Python on `-m gust.server`; a zygote of a release that runs it is started the same way without
    /// the shell (one exec less on every cold start: 2–3 ms here, docs/benchmarks.md "Where a cold
    /// start goes"). Any other web process, or a slug without `.venv/bin/python`, runs as it is. The
    /// same file runs either way (the script execs it too), so nothing of the app's is trusted more.
    /// What the script sets is kept in step with it by `ZygoteStartTests.aZygoteStartsAsTheStartScriptWould`.
    static func zygoteStart(
        command: String, directory: URL, releaseDirectory: String, environment: [String: String]
    ) -> (executable: String, arguments: [String], environment: [String: String]) {
        let python = ".venv/bin/python"
        guard command == ".gust/start", FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent(python).path) else {
            return (command, [], environment)
        }
        var environment = environment
        let runtime = releaseDirectory + "/.gust/runtime"
        environment["PYTHONPATH"] = environment["PYTHONPATH"].flatMap { $0.isEmpty ? nil : runtime + ":" + $0 } ?? runtime
        environment["PYTHONUNBUFFERED"] = "1"
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        environment["GUST_APP_ROOT"] = releaseDirectory
        return (python, ["-m", "gust.server"], environment)
    }

    /// Starts the release's zygote and waits until it has imported the app (at most the start timeout):
    /// as gustd's user, or under the sandbox in a sandbox of the app's own, like an instance's (its
    /// forks share it), in a cgroup of its own with the app's limits.
    func startZygote(
        command: String, directory: URL, whileImporting: @Sendable (Zygote) async -> Void
    ) async throws -> (Zygote, Zygote.Readiness) {
        let id = String(UUID().uuidString.lowercased().prefix(8))
        let progress = self.progress.withLock { $0 }
        let config = try release.openedConfig(home: configuration.home)
        let output = InstanceOutput(
            log: configuration.appLog(app), version: version, id: id,
            secrets: release.secretNames.compactMap { config[$0] }
        )
        output.relay(to: progress)
        defer { output.relay(to: nil) }
        progress?("Starting zygote \(id) of v\(version)")
        let records = self.records
        let layout: InstanceLayout
        do { layout = try spawner.layout(id: id, release: directory, bindsOwnSocket: !release.passesListener) } catch {
            records.forget(id: id)
            throw error
        }
        var environment = environment(config: config, layout: layout, id: id, channelToken: "", internalToken: "")
        for name in ["GUST_SOCKET", "GUST_RECORDS_TOKEN", InternalSecret.environmentVariable] { environment[name] = nil }
        environment["GUST_ZYGOTE_FD"] = String(spawner.passedDescriptor(0))
        let start = Self.zygoteStart(command: command, directory: directory, releaseDirectory: layout.releaseDirectory, environment: environment)
        // Under the sandbox the zygote's bwrap and runtime are confined like an instance's. Without it,
        // where gustd has cgroups, the zygote gets one all the same: it imports the app, work that must
        // not run at gustd's own CPU weight (`GustdCgroup`); rlimits stay the sandbox's.
        var cgroup: InstanceCgroup?
        var confinement = SpawnConfinement()
        let confined = switch limitMechanism {
        case .cgroup1?, .cgroup2?: true
        case .rlimits?: spawner.isSandboxed
        case nil: false
        }
        if confined, let limitMechanism {
            let appLimits = await limits()
            do { cgroup = try InstanceCgroup(mechanism: limitMechanism, app: app, id: id, limits: appLimits) } catch {
                records.forget(id: id)
                throw error
            }
            confinement = cgroup?.confinement(ownUID: spawner.appUIDInside != nil) ?? confinement
            confinement.tmpBytes = appLimits.tmp
        }
        let zygote: Zygote
        do {
            zygote = try Zygote(id: id, appUID: spawner.appUIDInside, cgroup: cgroup, tmpBytes: confinement.tmpBytes) {
                [spawner, confinement, start, cgroup] control in
                try spawner.spawn(
                    executable: start.executable, arguments: start.arguments, layout: layout, release: directory,
                    environment: start.environment,
                    marker: InstanceStragglers.marker(id: id), confinement: confinement, passing: [control],
                    onOutput: { output.deliver($0, stream: $1.rawValue) },
                    onExit: { _ in
                        records.forget(id: id)
                        cgroup?.finish()
                    }
                )
            }
        } catch {
            cgroup?.finish()
            records.forget(id: id)
            throw error
        }
        try? records.remember(.init(id: id, pid: zygote.process.pid, startTime: zygote.process.startTime, app: app.rawValue, version: version, kind: "zygote"))
        await whileImporting(zygote)
        // Bounded by the start timeout, and by the launch: a cancelled launch kills the zygote it started.
        let timeout = configuration.startTimeout
        let first = await withTaskGroup(of: Result<Zygote.Readiness, any Error>.self) { group in
            group.addTask {
                do { return .success(try await zygote.readiness()) } catch { return .failure(error) }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)  // or until the launch is cancelled
                return .failure(CancellationError())
            }
            let first = await group.next()!
            if case .failure(let error) = first, error is CancellationError { zygote.process.signal(SIGKILL) }
            group.cancelAll()
            return first
        }
        // What the app printed while it imported reaches the pusher before the relay ends: the
        // readiness came over the control socket and may have overtaken it.
        await zygote.process.outputIsDelivered(within: Self.startOutputWait)
        switch first {
        case .success(.ready) where spawner.isSandboxed && zygote.runtimePID == nil:
            // A runtime from before zygotes ran in the sandbox: its forks could not join their cgroups.
            return (zygote, .unforkable("its runtime was built before zygotes ran in the sandbox (push again to get one)"))
        case .success(let readiness):
            return (zygote, readiness)
        case .failure where Task.isCancelled:
            throw CancellationError()
        case .failure(let error) where error is CancellationError:
            throw GustError("v\(version)'s zygote did not import the app within \(timeout.shortText) of starting.", code: 503)
        case .failure:
            throw startEnded(await zygote.process.exitStatus(), cgroup: zygote.cgroup)
        }
    }
}
