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

    /// The instance `id` forked from the release's zygote, or nil when it starts on
    /// its own (no zygote for this release, it cannot be forked, or this fork failed).
    func forkFromZygote(
        executable: String, directory: URL, id: String, socketPath: String, channelToken: String, internalToken: String,
        output: InstanceOutput, cgroupProcs: [String], onExit: @escaping @Sendable (Int32) -> Void
    ) async throws -> InstanceProcess? {
        guard let zygote else { return nil }
        guard Self.hasZygoteRuntime(directory) else {
            if zygote.lifecycle.forksInstances { zygote.bypass("its runtime was built before zygotes (push again to get one)") }
            return nil
        }
        guard let resident = try await zygote.resident(start: { try await self.startZygote(executable: executable, directory: directory) })
        else { return nil }
        let environment = [
            "GUST_INSTANCE": id, "GUST_SOCKET": socketPath, "GUST_RECORDS_TOKEN": channelToken,
        ]
        let forked: Zygote.Forked
        do {
            forked = try await resident.fork(
                id: id, socketPath: socketPath, environment: environment, internalToken: internalToken, cgroupProcs: cgroupProcs
            )
        } catch {
            zygote.forkFailed(String(describing: error))
            logger.warning("\(app) v\(version): instance \(id) starts on its own: \(error)")
            return nil
        }
        zygote.forked()
        return InstanceProcess(
            forked: forked.pid, pidfd: forked.pidfd, stdout: forked.stdout, stderr: forked.stderr,
            marker: InstanceStragglers.marker(id: id),
            onOutput: { output.deliver($0, stream: $1.rawValue) },
            onExit: { status in
                zygote.forkExited()
                onExit(status)
            },
            status: { resident.exitStatus(of: forked.pid) }
        )
    }

    /// Starts the release's zygote and waits until it has imported the app (at most the start timeout).
    func startZygote(executable: String, directory: URL) async throws -> (Zygote, Zygote.Readiness) {
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
        let layout = InstanceLayout(
            hostSocket: "", socket: "", recordsSocket: configuration.home.recordsSocket.path, releaseDirectory: directory.path,
            path: ProcessInfo.processInfo.environment["PATH"] ?? Sandbox.path
        )
        var environment = environment(config: config, layout: layout, id: id, channelToken: "", internalToken: "")
        for name in ["GUST_SOCKET", "GUST_RECORDS_TOKEN", InternalSecret.environmentVariable] { environment[name] = nil }
        let records = self.records
        let zygote = try Zygote(
            id: id, executable: executable, environment: environment, directory: directory.path,
            onOutput: { output.deliver($0, stream: $1.rawValue) },
            onExit: { _ in records.forget(id: id) }
        )
        try? records.remember(.init(id: id, pid: zygote.process.pid, startTime: zygote.process.startTime, app: app.rawValue, version: version, kind: "zygote"))
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
        switch first {
        case .success(let readiness):
            return (zygote, readiness)
        case .failure where Task.isCancelled:
            throw CancellationError()
        case .failure(let error) where error is CancellationError:
            throw GustError("v\(version)'s zygote did not import the app within \(timeout.shortText) of starting.", code: 503)
        case .failure:
            let status = await zygote.process.exitStatus()
            throw GustError("v\(version) \(InstanceProcess.describe(status)) while starting; its output is above.")
        }
    }
}
