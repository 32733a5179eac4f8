import Foundation
import GustCore

/// A build's steps run under its app's limits, each in a cgroup of its own
/// (`APP/build-…`) beside the app's instances' in gustd's tree: gustd starts
/// them. A build past its memory is stopped by the kernel and fails naming the
/// limit; forks past its pids limit are refused. Where gustd has no cgroup, rlimits
/// bound compile instead (`BuildRlimits`).
extension Build {
    /// A build step's cgroup, with the app's memory, pids and cpu written, or nil where gustd
    /// has no cgroup (rlimits, `--no-limits`) or the build is not gustd's (`gust dev`).
    func makeCgroup() throws -> InstanceCgroup? {
        guard let limits, let mechanism = limitMechanism else { return nil }
        switch mechanism {
        case .cgroup1, .cgroup2: break
        case .rlimits: return nil
        }
        let id = InstanceCgroup.buildPrefix + UUID().uuidString.prefix(8).lowercased()
        do {
            return try InstanceCgroup(mechanism: mechanism, app: app, id: id, limits: Self.buildLimits(limits))
        } catch let error as GustError {
            throw GustError("Cannot confine the build: \(error.message)", hint: "Is gustd's cgroup tree (gustd --cgroup-root) the gust user's? See docs/security.md.")
        }
    }

    /// A compile step's rlimits where gustd has no cgroup (`LimitMechanism.rlimits`): its address
    /// space at twice the build's memory limit, and its processes at the build's pids limit where the
    /// app runs as a uid of its own (`BuildRlimits`); nil under a cgroup, with `--no-limits`, in
    /// `gust dev`, or where `prlimit` is missing.
    func rlimits() throws -> BuildRlimits? {
        guard let limits, case .rlimits = limitMechanism, FileManager.default.isExecutableFile(atPath: BuildRlimits.prlimit) else {
            return nil
        }
        let build = Self.buildLimits(limits)
        let ownUID = try settings.sandbox?.identity.hostIDs(ofApp: appNumber) != nil
        let bounds = BuildRlimits(memory: build.memory, processes: ownUID ? build.pids : nil)
        return bounds.memory == nil && bounds.processes == nil ? nil : bounds
    }

    /// What a build gets below which pip and npm fail on their own: pip installs build dependencies
    /// into `/tmp` and runs two interpreters, npm runs node with its threads.
    static let buildFloor = AppLimits(memory: 1 << 30, pids: 256, tmp: 64 << 20)

    /// A build's limits: its app's, raised to `buildFloor` where they are below it (an app may run
    /// in 128 MB; its `pip install` does not).
    static func buildLimits(_ app: AppLimits) -> AppLimits {
        func atLeast(_ value: Int?, _ floor: Int?) -> Int? {
            guard let value else { return nil }
            return max(value, floor ?? value)
        }
        var limits = app
        limits.memory = atLeast(app.memory, buildFloor.memory)
        limits.pids = atLeast(app.pids, buildFloor.pids)
        limits.tmp = atLeast(app.tmp, buildFloor.tmp)
        return limits
    }

    /// The most entries a slug may hold, and the most bytes all their paths may take: gustd lists a
    /// slug's paths, sorted, before it packs them, and a build could make millions of links to an
    /// empty file under long names, next to nothing on the disk and gigabytes in gustd's memory.
    /// A large Node app's `node_modules` holds some 100,000 files.
    static let maxSlugEntries = 300_000
    static let maxSlugPathBytes = 32 << 20

    /// Fails the build when its slug holds more entries or longer paths than gustd packs, or when,
    /// as it will be unpacked, it is over the app's disk limit: nothing of it is packed. The slug is
    /// kept twice (its artifact, and the release unpacked where it runs) for as long as the release
    /// is, and was bounded by nothing but the disk before.
    func checkSlug(_ slug: URL) async throws {
        let tally = try await BlockingWork.run { DiskUsage.tally(slug, .unpacked) }
        guard !tally.isTooDeep else {
            throw GustError(
                "The slug has directories more than \(DiskUsage.maxDepth) deep, deeper than gustd measures: the build failed, and nothing of it was kept.",
                hint: "Leave out of the slug what the app does not need to run (build tools, caches, test data)."
            )
        }
        guard tally.entries <= Self.maxSlugEntries, tally.pathBytes <= Self.maxSlugPathBytes else {
            throw GustError(
                "The slug holds \(tally.entries) files and directories whose paths take \(LimitSize.spoken(tally.pathBytes)), over what a slug may (\(Self.maxSlugEntries) entries, \(LimitSize.spoken(Self.maxSlugPathBytes)) of paths): the build failed, and nothing of it was kept.",
                hint: "Leave out of the slug what the app does not need to run (build tools, caches, test data)."
            )
        }
        guard let limit = cacheLimit, tally.bytes > limit else { return }
        throw GustError(
            "The slug is \(LimitSize.spoken(tally.bytes)) unpacked, over \(app)'s disk limit (\(LimitSize.spoken(limit))): the build failed, and nothing of it was kept.",
            hint: "Leave out of the slug what the app does not need to run (build tools, caches, test data), or ask an admin to raise it: gust limits \(app) --disk SIZE"
        )
    }

    /// The error that names the limit a failed compile step met, if it met one.
    func limitFailure(_ cgroup: InstanceCgroup?, _ outcome: StreamingCommand.Outcome) -> GustError? {
        guard let cgroup, outcome != .exited(0), outcome != .timedOut, outcome != .stopped else { return nil }
        if cgroup.wasOutOfMemory {
            return GustError(
                "The build ran \(cgroup.outOfMemoryText): the kernel stopped it.",
                hint: "Use less memory while building, or ask an admin to raise it: gust limits \(app) --memory SIZE"
            )
        }
        if cgroup.pidsLimitHits > 0, let pids = cgroup.limits.pids {
            return GustError(
                "The build failed after reaching its process limit (\(pids) processes and threads): \(cgroup.pidsLimitHits) forks were refused.",
                hint: "Start fewer processes while building, or ask an admin to raise it: gust limits \(app) --pids N"
            )
        }
        return nil
    }
}

extension StreamingCommand {
    /// The same command, started by a shell that first writes its own pid into each of
    /// `cgroupProcs`: the command and everything it starts run in those cgroups.
    func joining(cgroupProcs: [String]) -> StreamingCommand {
        guard !cgroupProcs.isEmpty else { return self }
        let files = cgroupProcs.map(Sandbox.quoted).joined(separator: " ")
        let script = """
            for f in \(files); do echo $$ > "$f" || { echo "Cannot join the build's cgroup $f" >&2; exit 125; }; done
            exec "$0" "$@"
            """
        var wrapped = self
        wrapped.executable = URL(fileURLWithPath: "/bin/sh")
        wrapped.arguments = ["-c", script, executable.path] + arguments
        return wrapped
    }

    /// The same command, killed (SIGKILL, with its sandbox, which dies with it) when the process
    /// that started it ends: a build never outlives gustd, a SIGKILLed one included. Where
    /// `setpriv` is missing, unchanged.
    func dyingWithParent() -> StreamingCommand { signalledAsParentDies("KILL") }

    /// The same command, sent `signal` (a name `setpriv` knows) when the process that started it
    /// ends. Where `setpriv` is missing, unchanged.
    private func signalledAsParentDies(_ signal: String) -> StreamingCommand {
        guard FileManager.default.isExecutableFile(atPath: Sandbox.setpriv) else { return self }
        var wrapped = self
        wrapped.executable = URL(fileURLWithPath: Sandbox.setpriv)
        wrapped.arguments = ["--pdeathsig", signal, "--", executable.path] + arguments
        return wrapped
    }

    /// The same command (mmdebstrap), set to end as one interrupted by Ctrl-C does, also when the
    /// process that started it is killed outright (SIGKILL, the OOM killer) and can neither stop
    /// it nor read its output.
    ///
    /// A shell stands between them and gets SIGUSR1 as its parent dies (`setpriv --pdeathsig`); it
    /// then sends SIGTERM to the whole process group, as a terminal's Ctrl-C reaches every process
    /// of a command. mmdebstrap itself only waits for its worker on SIGTERM: signalling it alone
    /// (as this did before) let the worker go on installing the whole root, orphaned. The command's
    /// output goes through a `tee` that ignores the signals and the broken pipe: without it,
    /// mmdebstrap died of SIGPIPE at its first word after gust and left proc, sys and dev mounted in
    /// the new root. The pipeline runs in the background so that the shell takes the signal while
    /// it waits; `pipefail` keeps its exit status. mmdebstrap also gets SIGTERM should the shell die
    /// first. Where `setpriv` is missing, unchanged.
    func outlivingItsReader() -> StreamingCommand {
        guard FileManager.default.isExecutableFile(atPath: Sandbox.setpriv) else { return self }
        let script = """
            set -o pipefail
            trap 'trap "" USR1; kill -TERM 0' USR1
            \(Sandbox.setpriv) --pdeathsig TERM -- "$0" "$@" 2>&1 | (trap '' INT TERM USR1; exec tee -p /dev/null) &
            wait %1
            """
        var wrapped = self
        wrapped.executable = URL(fileURLWithPath: "/bin/bash")
        wrapped.arguments = ["-c", script, executable.path] + arguments
        return wrapped.signalledAsParentDies("USR1")
    }
}
