import Foundation
#if canImport(Glibc)
import Glibc
#endif
import GustCore

/// The three buildpack scripts of a build, as gustd runs them: each in the app's sandbox
/// (bubblewrap, the app's uid, nothing of `GUST_HOME`) and in a cgroup of its own in gustd's
/// tree under the app's build limits. `bin/detect` and `bin/release` read the pushed tree,
/// which is hostile input: they see it read-only at `/app`, their buildpack at `/buildpack`, and
/// nothing else. `bin/compile` also gets its cache at `/cache` and ENV_DIR at `/env`, writable,
/// with the network for pip and npm. Without a sandbox (`gust dev`, `gustd --sandbox none`) the
/// scripts run directly on the host's paths.
extension Build {
    enum Script: String {
        case detect, compile, release
    }

    func detect(_ source: URL, deadline: ContinuousClock.Instant) async throws -> Buildpack {
        if let sandbox = settings.sandbox, try sandbox.identity.hostIDs(ofApp: appNumber) != nil {
            // The export is gustd's (umask 077); the app's uid reads it, through the sandbox's mount only.
            try await BlockingWork.run { try Sandbox.openToOthers(source.path) }
        }
        for buildpack in buildpacks {
            let lines = LineCollector()
            let command = try command(.detect, of: buildpack, source: source, stack: nil)
            let (outcome, _) = try await confined(command, limited: false, until: min(deadline, .now + .seconds(30))) { line in
                lines.append(line)
                return true
            }
            if outcome == .exited(0) {
                let name = lines.lines.first { !$0.isEmpty } ?? buildpack.name
                reporter.step("\(name) app detected")
                return buildpack
            }
        }
        let wanted = buildpacks.compactMap { Buildpack.lookedFor[$0.name] }.joined(separator: "; or ")
        throw GustError(
            "No buildpack recognised this app.",
            hint: "Gust looked for \(wanted) at the top of the repository. Add one and push again."
        )
    }

    func compile(_ buildpack: Buildpack, source: URL, env: URL, deadline: ContinuousClock.Instant, stack: Stack? = nil) async throws {
        let cache = home.cache(app)
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        if let stack, settings.sandbox == nil {
            throw GustError(
                "This app builds on stack \(stack.reference), and builds run on a stack only in the sandbox, which is off here (gustd --sandbox none, or bubblewrap does not work).",
                hint: "Run gustd with the sandbox (install bubblewrap), or remove the stacks to build on the host's system."
            )
        }
        let command = try command(.compile, of: buildpack, source: source, cache: cache, env: env, stack: stack)
        let output = BuildOutputBudget(bytes: settings.outputLimit)
        let reporter = reporter
        let outcome: StreamingCommand.Outcome
        let cgroup: InstanceCgroup?
        do {
            (outcome, cgroup) = try await withHeartbeat {
                try await confined(command, until: deadline) { line in
                    guard output.admit(line) else { return false }
                    reporter.raw(line)
                    return true
                }
            }
            try await reclaim([source, cache, env])
        } catch {
            try? await reclaim([source, cache, env])
            throw error
        }
        if let failure = limitFailure(cgroup, outcome) { throw failure }
        if outcome == .exited(0), let cacheLimit {
            let size = try await BlockingWork.run { Self.diskUsage(of: cache) }
            if size > cacheLimit {
                // Emptied, so that the next build starts below the limit instead of failing again.
                try? FileManager.default.removeItem(at: cache)
                throw GustError(
                    "The build cache grew to \(LimitSize.spoken(size)), over \(app)'s disk limit (\(LimitSize.spoken(cacheLimit))): the build failed, and the cache was emptied.",
                    hint: "Cache less (fewer or smaller dependencies), or ask an admin to raise it: gust limits \(app) --disk SIZE"
                )
            }
        }
        switch outcome {
        case .exited(0): return
        case .stopped:
            throw output.failure
        case .timedOut:
            throw GustError(
                "The build took longer than its limit of \(settings.timeout.minutesText) and was stopped.",
                hint: "Make the build faster, or raise GUST_BUILD_TIMEOUT (seconds) for gust-receive."
            )
        case .exited(let code):
            throw GustError("The \(buildpack.name) buildpack failed to compile the app (exit code \(code)); its output is above.")
        case .signalled(let signal):
            throw GustError("The \(buildpack.name) buildpack was killed by signal \(signal) while compiling.")
        }
    }

    func releaseProcess(_ buildpack: Buildpack, source: URL, deadline: ContinuousClock.Instant, stack: Stack?) async throws -> String {
        let lines = LineCollector()
        let command = try command(.release, of: buildpack, source: source, stack: stack)
        let (outcome, _) = try await confined(command, limited: false, until: min(deadline, .now + .seconds(30))) { line in
            lines.append(line)
            return true
        }
        guard outcome == .exited(0), let web = ReleaseMetadata(yaml: lines.lines.joined(separator: "\n")).web else {
            let said = lines.lines.suffix(5).joined(separator: "\n")
            throw GustError.internal(
                "The \(buildpack.name) buildpack's bin/release did not name a web process (\(outcome))." + (said.isEmpty ? "" : "\n" + said)
            )
        }
        return web
    }

    /// Bytes of the regular files under `directory` (blocks allocated, as du counts them).
    static func diskUsage(of directory: URL) -> Int {
        guard let walker = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: [.totalFileAllocatedSizeKey, .isRegularFileKey]) else { return 0 }
        var total = 0
        for case let url as URL in walker {
            guard let values = try? url.resourceValues(forKeys: [.totalFileAllocatedSizeKey, .isRegularFileKey]), values.isRegularFile == true else { continue }
            total += values.totalFileAllocatedSize ?? 0
        }
        return total
    }

    // MARK: Running a script

    /// Runs `command`, with `limited` in a cgroup of its own (`makeCgroup`), removed when it ends; the
    /// cgroup, to name a limit the command met. detect and release (the buildpack's own short scripts,
    /// bounded by a 30 s deadline and the sandbox) skip it: a cgroup's making and removal cost a push
    /// some tens of milliseconds each.
    func confined(
        _ command: StreamingCommand, limited: Bool = true, until deadline: ContinuousClock.Instant,
        accepting: @escaping @Sendable (String) -> Bool
    ) async throws -> (StreamingCommand.Outcome, InstanceCgroup?) {
        let cgroup = limited ? try makeCgroup() : nil
        defer { cgroup?.finish() }
        let joined = cgroup.map { command.joining(cgroupProcs: $0.directories.map { $0 + "/cgroup.procs" }) } ?? command
        let outcome = try await joined.dyingWithParent().run(until: deadline, accepting: accepting)
        cgroup?.finish()  // before its OOM count is read
        return (outcome, cgroup)
    }

    /// `script` of `buildpack` as this build runs it: in the app's sandbox (on `stack`'s system)
    /// when there is one, else directly.
    func command(
        _ script: Script, of buildpack: Buildpack, source: URL, cache: URL? = nil, env: URL? = nil, stack: Stack?
    ) throws -> StreamingCommand {
        let executable = buildpack.directory.appendingPathComponent("bin/" + script.rawValue)
        guard var sandbox = settings.sandbox else {
            let arguments = [source.path] + (script == .compile ? [cache, env].compactMap { $0?.path } : [])
            return hostCommand(executable, arguments, in: source)
        }
        sandbox.root = stack.map { $0.rootfs(in: home).path }
        // The build's /tmp is sized as its instances' are (at least `buildFloor`'s).
        if let tmp = limits.flatMap({ Self.buildLimits($0).tmp }) { sandbox.tmpBytes = tmp }
        sandbox = try sandbox.withSeccompFilter(in: home.run)
        let ids = try sandbox.identity.hostIDs(ofApp: appNumber)
        var mounts: [Sandbox.Mount] = [
            .init(buildpack.directory.path, at: "/buildpack"),
            .init(source.path, at: Sandbox.appDirectory, writable: script == .compile),
        ]
        var arguments = [Sandbox.appDirectory]
        var owning: [String] = []
        if script == .compile, let cache, let env {
            mounts += [.init(cache.path, at: "/cache", writable: true), .init(env.path, at: "/env", writable: true)]
            arguments += ["/cache", "/env"]
            owning = [Sandbox.appDirectory, "/cache", "/env"]
        }
        let argv = sandbox.command(
            app: ids, mounts: mounts, directory: Sandbox.appDirectory, purpose: .build(owning: owning),
            executable: "/buildpack/bin/" + script.rawValue, arguments: arguments
        )
        var environment = [
            "PATH": Sandbox.path, "HOME": "/tmp", "LANG": ProcessInfo.processInfo.environment["LANG"] ?? "C.UTF-8",
            "GUST_APP": app.rawValue,
        ]
        for name in ["http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "PIP_INDEX_URL", "npm_config_registry"] {
            environment[name] = ProcessInfo.processInfo.environment[name]
        }
        let command = StreamingCommand(
            executable: URL(fileURLWithPath: argv[0]), arguments: Array(argv.dropFirst()), environment: environment,
            workingDirectory: source
        )
        // Without an app uid the sandbox needs nothing once started (and a short script may be gone by then).
        guard let ids else { return command }
        var block: [Int32] = [-1, -1]
        guard pipe(&block) == 0 else { throw GustError.internal("Cannot create a pipe for the build's sandbox.") }
        let writeEnd = block[1]
        _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)
        let frozen = sandbox
        var blocked = command
        blocked.standardInput = block[0]
        blocked.started = { pid in
            // Waits for bwrap's first child, runs newuidmap and lets it go on: off the caller's thread.
            _ = try await BlockingWork.run { try frozen.release(pid, app: ids, unblocking: writeEnd) }
        }
        return blocked
    }

    /// After `bin/compile` as the app's uid: `paths` (mounted at the same places) back to gustd's
    /// uid, so that it can pack, cache and delete them. Nothing to do without an app uid.
    func reclaim(_ paths: [URL]) async throws {
        guard let sandbox = settings.sandbox, let ids = try sandbox.identity.hostIDs(ofApp: appNumber) else { return }
        try await BlockingWork.run { try sandbox.reclaim(paths.map(\.path), app: ids) }
    }

    private func hostCommand(_ executable: URL, _ arguments: [String], in directory: URL) -> StreamingCommand {
        var environment = ProcessInfo.processInfo.environment
        // A hook runs with git's environment; a buildpack must not act on this repository.
        for key in environment.keys where key.hasPrefix("GIT_") { environment[key] = nil }
        environment["GUST_APP"] = app.rawValue
        return StreamingCommand(executable: executable, arguments: arguments, environment: environment, workingDirectory: directory)
    }
}
