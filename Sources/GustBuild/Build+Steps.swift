import Foundation
#if canImport(Glibc)
import Glibc
#endif
import GustCore

/// The three buildpack scripts of a build, as gustd runs them: in the app's sandbox (bubblewrap,
/// the app's uid, nothing of `GUST_HOME`), in two sandboxes per build: each is a bwrap start (and
/// `newuidmap` where apps have uids of their own) that a push waits for. Every buildpack's
/// `bin/detect` runs in one: they read the pushed tree, which is hostile input, and see it
/// read-only at `/app`, the buildpacks read-only at `/buildpacks/N`, nothing else; which one matched
/// comes back as the sandbox's exit status, an index into this build's own list
/// (`DetectOutcome`). `bin/compile` then runs in the other, in a cgroup of its own in gustd's tree
/// under the app's build limits (where gustd has no cgroup, under rlimits: `BuildRlimits`), with its buildpack at `/buildpack`, its cache at `/cache` and
/// ENV_DIR at `/env`, writable, and the network for pip and npm; once it succeeded and every
/// process it left is killed, `bin/release` runs in the same sandbox, its output going to a file
/// of the workspace that compile's processes never hold (`Sandbox.compileThenReleaseScript`).
/// Without a sandbox (`gust dev`, `gustd --sandbox none`) each script runs directly on the host's paths.
extension Build {
    /// How the one sandbox that runs every `bin/detect` ended: its exit status is `100 + N` when the
    /// Nth buildpack matched (its output is then the sandbox's), 99 when none did. Anything else
    /// (bwrap could not start, the time ran out) is a failure: never an index from the pushed tree.
    enum DetectOutcome: Equatable {
        case matched(Int)
        case noneMatched
        case failed

        static let firstMatch: Int32 = 100
        static let noMatch: Int32 = 99

        init(_ outcome: StreamingCommand.Outcome, buildpacks count: Int) {
            guard case .exited(let code) = outcome else {
                self = .failed
                return
            }
            if code == Self.noMatch {
                self = .noneMatched
            } else if code >= Self.firstMatch, code - Self.firstMatch < count {
                self = .matched(Int(code - Self.firstMatch))
            } else {
                self = .failed
            }
        }

        /// Runs each buildpack directory given (`/buildpacks/0` …) in turn; the first whose
        /// `bin/detect` says yes prints what it printed and ends the run.
        static let script = """
            n=0
            for pack in "$@"; do
              if "$pack/bin/detect" \(Sandbox.appDirectory) >/tmp/.gust-detect 2>&1; then
                cat /tmp/.gust-detect
                exit $((\(firstMatch) + n))
              fi
              n=$((n + 1))
            done
            exit \(noMatch)
            """
    }

    func detect(_ source: URL, deadline: ContinuousClock.Instant) async throws -> Buildpack {
        guard settings.sandbox != nil else { return try await detectOnHost(source, deadline: deadline) }
        if try settings.sandbox?.identity.hostIDs(ofApp: appNumber) != nil {
            // The export is gustd's (umask 077); the app's uid reads it, through the sandbox's mount only.
            try await BlockingWork.run { try Sandbox.openToOthers(source.path) }
        }
        // A buildpack the installation lacks matches nothing (as its own sandbox would have failed to start).
        let present = buildpacks.filter { FileManager.default.fileExists(atPath: $0.detect.path) }
        guard !present.isEmpty else { throw noBuildpack() }
        let packs = present.indices.map { "/buildpacks/\($0)" }
        let mounts = [Sandbox.Mount(source.path, at: Sandbox.appDirectory)]
            + zip(present, packs).map { Sandbox.Mount($0.directory.path, at: $1) }
        let command = try sandboxed(
            mounts: mounts, purpose: .build(owning: []), executable: "/bin/sh",
            arguments: ["-c", DetectOutcome.script, "gust-detect"] + packs, source: source, stack: nil
        )
        let lines = LineCollector()
        // Each buildpack's detect had 30 s of its own, as when each ran alone.
        let (outcome, _) = try await confined(command, limited: false, until: min(deadline, .now + .seconds(30 * present.count))) { line in
            lines.append(line)
            return true
        }
        switch DetectOutcome(outcome, buildpacks: present.count) {
        case .matched(let index): return detected(present[index], said: lines.lines)
        case .noneMatched: throw noBuildpack()
        case .failed:
            let said = lines.lines.suffix(5).joined(separator: "\n")
            throw GustError.internal("The buildpacks' bin/detect could not run (\(outcome))." + (said.isEmpty ? "" : "\n" + said))
        }
    }

    /// Without a sandbox: each buildpack's `bin/detect` in turn, directly.
    private func detectOnHost(_ source: URL, deadline: ContinuousClock.Instant) async throws -> Buildpack {
        for buildpack in buildpacks {
            let lines = LineCollector()
            let command = hostCommand(buildpack.detect, [source.path], in: source)
            let (outcome, _) = try await confined(command, limited: false, until: min(deadline, .now + .seconds(30))) { line in
                lines.append(line)
                return true
            }
            if outcome == .exited(0) { return detected(buildpack, said: lines.lines) }
        }
        throw noBuildpack()
    }

    private func detected(_ buildpack: Buildpack, said lines: [String]) -> Buildpack {
        let name = lines.first { !$0.isEmpty } ?? buildpack.name
        reporter.step("\(name) app detected")
        return buildpack
    }

    private func noBuildpack() -> GustError {
        let wanted = buildpacks.compactMap { Buildpack.lookedFor[$0.name] }.joined(separator: "; or ")
        return GustError(
            "No buildpack recognised this app.",
            hint: "Gust looked for \(wanted) at the top of the repository. Add one and push again."
        )
    }

    /// `bin/compile`, then `bin/release`'s web process: in one sandbox when there is one (its
    /// output into `workspace`'s `release.out`), else each directly.
    func compileAndRelease(
        _ buildpack: Buildpack, source: URL, env: URL, workspace: URL, deadline: ContinuousClock.Instant, stack: Stack?
    ) async throws -> String {
        guard settings.sandbox != nil else {
            try await compile(buildpack, source: source, env: env, releaseOutput: nil, deadline: deadline, stack: stack)
            return try await releaseProcessOnHost(buildpack, source: source, deadline: deadline)
        }
        let output = workspace.appendingPathComponent("release.out")
        try await compile(buildpack, source: source, env: env, releaseOutput: output, deadline: deadline, stack: stack)
        let written = try await BlockingWork.run { try Self.readReleaseOutput(output) }
        return try webProcess(of: buildpack, lines: written.lines, outcome: written.status.map(StreamingCommand.Outcome.exited))
    }

    /// `bin/compile`; with `releaseOutput`, followed by `bin/release` in its sandbox, writing there.
    private func compile(
        _ buildpack: Buildpack, source: URL, env: URL, releaseOutput: URL?, deadline: ContinuousClock.Instant, stack: Stack?
    ) async throws {
        let cache = home.cache(app)
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        if let stack, settings.sandbox == nil {
            throw GustError(
                "This app builds on stack \(stack.reference), and builds run on a stack only in the sandbox, which is off here (gustd --sandbox none, or bubblewrap does not work).",
                hint: "Run gustd with the sandbox (install bubblewrap), or remove the stacks to build on the host's system."
            )
        }
        let rlimits = try self.rlimits()
        let command: StreamingCommand
        if settings.sandbox != nil {
            let owning = [Sandbox.appDirectory, "/cache", "/env"]
            let arguments = [Sandbox.appDirectory, "/cache", "/env"]
            let compile = rlimits?.command("/buildpack/bin/compile", arguments) ?? (executable: "/buildpack/bin/compile", arguments: arguments)
            command = try sandboxed(
                mounts: [
                    .init(buildpack.directory.path, at: "/buildpack"), .init(source.path, at: Sandbox.appDirectory, writable: true),
                    .init(cache.path, at: "/cache", writable: true), .init(env.path, at: "/env", writable: true),
                ],
                purpose: releaseOutput.map { .compileThenRelease(owning: owning, release: "/buildpack/bin/release", output: $0.path) }
                    ?? .build(owning: owning),
                executable: compile.executable, arguments: compile.arguments, source: source, stack: stack
            )
        } else {
            var host = hostCommand(buildpack.compile, [source.path, cache.path, env.path], in: source)
            if let bounded = rlimits?.command(host.executable.path, host.arguments) {
                (host.executable, host.arguments) = (URL(fileURLWithPath: bounded.executable), bounded.arguments)
            }
            command = host
        }
        let output = BuildOutputBudget(bytes: settings.outputLimit)
        let signs = BuildRlimits.Signs()
        let reporter = reporter
        let outcome: StreamingCommand.Outcome
        let cgroup: InstanceCgroup?
        do {
            (outcome, cgroup) = try await withHeartbeat {
                try await confined(command, until: deadline) { line in
                    if rlimits != nil { signs.note(line) }
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
        // The cache outlives the build, so it is measured whatever the outcome: a build that filled
        // it and then failed (on purpose) would otherwise keep it, over the limit, for good.
        if let cacheLimit {
            let tally = try await BlockingWork.run { DiskUsage.tally(cache) }
            if tally.bytes > cacheLimit || tally.isTooDeep {
                // Emptied, so that the next build starts below the limit instead of failing again.
                NoFollowRemoval.removeTree(at: cache)  // what the build wrote: a 0500 directory too
                let grew = tally.isTooDeep
                    ? "more than \(DiskUsage.maxDepth) directories deep, deeper than gustd measures" : "to \(LimitSize.spoken(tally.bytes))"
                throw GustError(
                    "The build cache grew \(grew), over \(app)'s disk limit (\(LimitSize.spoken(cacheLimit))): the build failed, and the cache was emptied.",
                    hint: "Cache less (fewer or smaller dependencies), or ask an admin to raise it: gust limits \(app) --disk SIZE"
                )
            }
        }
        if let failure = limitFailure(cgroup, outcome) ?? rlimits?.failure(app: app, outcome, signs) { throw failure }
        switch outcome {
        case .exited(0): return
        case .stopped:
            throw output.failure
        case .timedOut:
            throw GustError(
                "The build took longer than its limit of \(settings.timeout.minutesText) and was stopped.",
                hint: "Make the build faster, or ask an admin to raise gustd's --build-timeout (seconds)."
            )
        case .exited(let code):
            throw GustError("The \(buildpack.name) buildpack failed to compile the app (exit code \(code)); its output is above.")
        case .signalled(let signal):
            throw GustError("The \(buildpack.name) buildpack was killed by signal \(signal) while compiling.")
        }
    }

    /// Without a sandbox: `bin/release` directly.
    private func releaseProcessOnHost(_ buildpack: Buildpack, source: URL, deadline: ContinuousClock.Instant) async throws -> String {
        let lines = LineCollector()
        let command = hostCommand(buildpack.release, [source.path], in: source)
        let (outcome, _) = try await confined(command, limited: false, until: min(deadline, .now + .seconds(30))) { line in
            lines.append(line)
            return true
        }
        return try webProcess(of: buildpack, lines: lines.lines, outcome: outcome)
    }

    /// The web process `bin/release` named, or the error that says it did not; `outcome` nil: it did not finish.
    private func webProcess(of buildpack: Buildpack, lines: [String], outcome: StreamingCommand.Outcome?) throws -> String {
        guard outcome == .exited(0), let web = ReleaseMetadata(yaml: lines.joined(separator: "\n")).web else {
            let said = lines.suffix(5).joined(separator: "\n")
            let ended = outcome.map { "\($0)" } ?? "it did not finish"
            throw GustError.internal(
                "The \(buildpack.name) buildpack's bin/release did not name a web process (\(ended))." + (said.isEmpty ? "" : "\n" + said)
            )
        }
        return web
    }

    /// The most `bin/release` may write in a compile step's sandbox (`ulimit -f` there says the same).
    static let releaseOutputLimit = 1 << 20

    /// What `bin/release` wrote in a compile step's sandbox (`Sandbox.compileThenReleaseScript`): its
    /// first 200 lines, and its exit status from the last line, `gust-release-exit N`, which the
    /// sandbox's own shell writes once it ended; nil status: that line is not there.
    static func readReleaseOutput(_ file: URL) throws -> (lines: [String], status: Int32?) {
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        let data = try handle.read(upToCount: releaseOutputLimit + 64) ?? Data()
        return parseReleaseOutput(data)
    }

    static func parseReleaseOutput(_ data: Data) -> (lines: [String], status: Int32?) {
        var lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map {
            String($0.trimmingSuffix(while: { $0 == "\r" }))
        }
        if lines.last == "" { lines.removeLast() }
        let prefix = "gust-release-exit "
        guard let last = lines.last, last.hasPrefix(prefix), let status = Int32(last.dropFirst(prefix.count)) else {
            return (Array(lines.prefix(200)), nil)
        }
        return (Array(lines.dropLast().prefix(200)), status)
    }

    // MARK: Running a script

    /// Runs `command`, with `limited` in a cgroup of its own (`makeCgroup`), removed when it ends; the
    /// cgroup, to name a limit the command met. detect (the buildpacks' own short scripts, bounded by
    /// a 30 s deadline each and the sandbox) skips it: a cgroup's making and removal cost a push some
    /// tens of milliseconds. release runs in compile's, after it.
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

    /// `executable` run in the app's sandbox (on `stack`'s system) with `mounts`, its `/tmp` sized
    /// as the app's instances' (at least `buildFloor`'s), as the app's uid where it has one.
    func sandboxed(
        mounts: [Sandbox.Mount], purpose: Sandbox.Purpose, executable: String, arguments: [String], source: URL, stack: Stack?
    ) throws -> StreamingCommand {
        guard var sandbox = settings.sandbox else { throw GustError.internal("A sandboxed build step without a sandbox.") }
        sandbox.root = stack.map { $0.rootfs(in: home).path }
        // The build's /tmp is sized as its instances' are (at least `buildFloor`'s).
        if let tmp = limits.flatMap({ Self.buildLimits($0).tmp }) { sandbox.tmpBytes = tmp }
        sandbox = try sandbox.withSeccompFilter(in: home.run)
        let ids = try sandbox.identity.hostIDs(ofApp: appNumber)
        let argv = sandbox.command(
            app: ids, mounts: mounts, directory: Sandbox.appDirectory, purpose: purpose, executable: executable, arguments: arguments
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
        if let path = settings.hostPath { environment["PATH"] = path }
        return StreamingCommand(executable: executable, arguments: arguments, environment: environment, workingDirectory: directory)
    }
}
