public import Foundation
#if canImport(Glibc)
import Glibc
#endif
public import GustCore
public import GustGit
import Synchronization

/// The build of one pushed commit: export → detect → compile → release → pack.
///
/// Produces an artifact and what the release row needs; records nothing.
/// The build directory lives under `GUST_HOME/tmp` and is removed whatever happens.
public struct Build: Sendable {
    public struct Output: Sendable {
        public var buildpack: String
        public var process: String
        public var artifact: Artifact
        /// The stack it was built on, and its instances must run on; nil: the host's system.
        public var stack: Stack?
    }

    public var app: AppName
    public var commit: String
    public var home: GustHome
    public var buildpacks: [Buildpack]
    public var config: [String: String]
    public var settings: BuildSettings
    public var reporter: BuildReporter
    /// The app's number (`Store.appNumber`): which uid its sandboxed build runs as.
    public var appNumber: Int = 0
    /// The app's disk limit for its build cache (`gust limits APP --disk`); nil: unbounded.
    public var cacheLimit: Int?
    /// The app's limits (`Store.effectiveLimits`): `bin/compile` runs under its memory, pids and
    /// cpu, in a cgroup beside its instances' (where gustd recorded one); nil: none.
    public var limits: AppLimits?
    /// The stacks a build may run on: the newest version of each name (`StackCatalog.newest()`);
    /// none: the host's system, as before stacks.
    public var stacks: [Stack] = []
    /// The name a build runs on unless the app's pin rules it out (`StackCatalog.defaultName`).
    public var defaultStack: String?

    public init(
        app: AppName, commit: String, home: GustHome, buildpacks: [Buildpack], config: [String: String],
        settings: BuildSettings, reporter: BuildReporter
    ) {
        self.app = app
        self.commit = commit
        self.home = home
        self.buildpacks = buildpacks
        self.config = config
        self.settings = settings
        self.reporter = reporter
    }

    public func run(repository: GitRepository) async throws -> Output {
        let deadline = ContinuousClock.now + settings.timeout
        let workspace = try makeWorkspace()
        defer { try? FileManager.default.removeItem(at: workspace) }
        let source = workspace.appendingPathComponent("app")
        let envDirectory = workspace.appendingPathComponent("env")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: false)
        try writeEnvironment(to: envDirectory)

        reporter.step("Exporting \(commit.prefix(7))")
        let summary = try repository.export(commit: commit, to: source)
        reporter.detail("\(summary.files) files, \(ByteCount(summary.bytes))")

        let buildpack = try await detect(source, deadline: deadline)
        let stack = try chooseStack(for: buildpack, source: source)
        try await compile(buildpack, source: source, env: envDirectory, deadline: deadline, stack: stack)
        let process = try await releaseProcess(buildpack, source: source, deadline: deadline)

        let started = ContinuousClock.now
        let artifact = try Artifacts.pack(source, into: home.artifacts, clampingTimesTo: summary.commitTime)
        let seconds = (ContinuousClock.now - started).seconds
        reporter.step("Packed \(ByteCount(artifact.size)) in \(String(format: "%.1f", seconds)) s")
        return Output(buildpack: buildpack.name, process: process, artifact: artifact, stack: stack)
    }

    /// Detects, compiles and reads the web process of a tree already in place,
    /// as `run` does between export and pack: `gust dev` builds a copy of a
    /// work tree this way, with the same buildpacks and cache.
    public func compile(tree source: URL) async throws -> (buildpack: String, process: String) {
        let deadline = ContinuousClock.now + settings.timeout
        let workspace = try makeWorkspace()
        defer { try? FileManager.default.removeItem(at: workspace) }
        let envDirectory = workspace.appendingPathComponent("env")
        try writeEnvironment(to: envDirectory)
        let buildpack = try await detect(source, deadline: deadline)
        try await compile(buildpack, source: source, env: envDirectory, deadline: deadline)
        return (buildpack.name, try await releaseProcess(buildpack, source: source, deadline: deadline))
    }

    private func makeWorkspace() throws -> URL {
        let dir = home.tmp.appendingPathComponent("build-\(app)-\(UUID().uuidString.prefix(8).lowercased())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Heroku's ENV_DIR: one file per config var, named after it.
    private func writeEnvironment(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
        for (name, value) in config where Self.isEnvironmentName(name) {
            try Data(value.utf8).write(to: directory.appendingPathComponent(name))
        }
    }

    static func isEnvironmentName(_ name: String) -> Bool {
        guard let first = name.first, first == "_" || first.isLetter else { return false }
        return name.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
    }

    private func detect(_ source: URL, deadline: ContinuousClock.Instant) async throws -> Buildpack {
        for buildpack in buildpacks {
            let lines = LineCollector()
            let outcome = try await command(buildpack.detect, [source.path], in: source)
                .run(until: min(deadline, .now + .seconds(30)), onLine: lines.append)
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

    private func compile(_ buildpack: Buildpack, source: URL, env: URL, deadline: ContinuousClock.Instant, stack: Stack? = nil) async throws {
        let cache = home.cache(app)
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        let step: StreamingCommand
        let reclaim: (@Sendable () throws -> Void)?
        if stack != nil, settings.sandbox == nil {
            throw GustError(
                "This app builds on stack \(stack!.reference), and builds run on a stack only in the sandbox, which is off here (GUST_SANDBOX=none, or bubblewrap does not work).",
                hint: "Run gust-receive with the sandbox (install bubblewrap), or remove the stacks to build on the host's system."
            )
        }
        if var sandbox = settings.sandbox {
            sandbox.root = stack.map { $0.rootfs(in: home).path }
            // The build's /tmp is sized as its instances' are (at least `buildFloor`'s).
            if let tmp = limits.flatMap({ Self.buildLimits($0).tmp }) { sandbox.tmpBytes = tmp }
            let ids = try sandbox.identity.hostIDs(ofApp: appNumber)
            let made = try sandboxed(sandbox.withSeccompFilter(in: home.run), ids: ids, buildpack: buildpack, source: source, cache: cache, env: env)
            step = made.step
            reclaim = made.reclaim
        } else {
            step = command(buildpack.compile, [source.path, cache.path, env.path], in: source)
            reclaim = nil
        }
        let cgroup = try makeCgroup()
        let output = BuildOutputBudget(bytes: settings.outputLimit)
        let outcome: StreamingCommand.Outcome
        do {
            defer { cgroup?.finish() }
            let confined = cgroup.map { step.joining(cgroupProcs: $0.directories.map { $0 + "/cgroup.procs" }) } ?? step
            outcome = try await withHeartbeat {
                try await confined.run(until: deadline) { line in
                    guard output.admit(line) else { return false }
                    reporter.raw(line)
                    return true
                }
            }
            try reclaim?()
        } catch {
            try? reclaim?()
            throw error
        }
        if let failure = limitFailure(cgroup, outcome) { throw failure }
        if outcome == .exited(0), let cacheLimit {
            let size = Self.diskUsage(of: cache)
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

    /// `bin/compile` in the app's sandbox: the build directory at `/app`, its cache at `/cache`
    /// (both writable), ENV_DIR at `/env` and the buildpack at `/buildpack`, read-only; the
    /// network (pip, npm); nothing else of GUST_HOME. With an app uid, the three directories are
    /// the app's while it runs and gustd's user's again after (`Sandbox.reclaim`).
    private func sandboxed(
        _ sandbox: Sandbox, ids: (uid: UInt32, gid: UInt32)?, buildpack: Buildpack, source: URL, cache: URL, env: URL
    ) throws -> (step: StreamingCommand, reclaim: (@Sendable () throws -> Void)?) {
        let buildpackRoot = buildpack.compile.deletingLastPathComponent().deletingLastPathComponent()
        let argv = sandbox.command(
            app: ids,
            mounts: [
                .init(buildpackRoot.path, at: "/buildpack"),
                .init(source.path, at: Sandbox.appDirectory, writable: true),
                .init(cache.path, at: "/cache", writable: true),
                .init(env.path, at: "/env", writable: true),
            ],
            directory: Sandbox.appDirectory, purpose: .build(owning: [Sandbox.appDirectory, "/cache", "/env"]),
            executable: "/buildpack/bin/" + buildpack.compile.lastPathComponent, arguments: [Sandbox.appDirectory, "/cache", "/env"]
        )
        var environment = [
            "PATH": Sandbox.path, "HOME": "/tmp", "LANG": ProcessInfo.processInfo.environment["LANG"] ?? "C.UTF-8",
            "GUST_APP": app.rawValue,
        ]
        for name in ["http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "PIP_INDEX_URL", "npm_config_registry"] {
            environment[name] = ProcessInfo.processInfo.environment[name]
        }
        var block: [Int32] = [-1, -1]
        if ids != nil, pipe(&block) != 0 { throw GustError.internal("Cannot create a pipe for the build's sandbox.") }
        let writeEnd = block[1]
        if ids != nil { _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC) }
        let step = StreamingCommand(
            executable: URL(fileURLWithPath: argv[0]), arguments: Array(argv.dropFirst()), environment: environment,
            workingDirectory: source, standardInput: ids == nil ? nil : block[0],
            started: { pid in _ = try sandbox.release(pid, app: ids, unblocking: ids == nil ? nil : writeEnd) }
        )
        let paths = [source.path, cache.path, env.path]
        guard let ids else { return (step, nil) }
        let reclaim: @Sendable () throws -> Void = { try sandbox.reclaim(paths, app: ids) }
        return (step, reclaim)
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

    private func releaseProcess(_ buildpack: Buildpack, source: URL, deadline: ContinuousClock.Instant) async throws -> String {
        let lines = LineCollector()
        let outcome = try await command(buildpack.release, [source.path], in: source)
            .run(until: min(deadline, .now + .seconds(30)), onLine: lines.append)
        guard outcome == .exited(0), let web = ReleaseMetadata(yaml: lines.lines.joined(separator: "\n")).web else {
            throw GustError.internal("The \(buildpack.name) buildpack's bin/release did not name a web process (\(outcome)).")
        }
        return web
    }

    private func command(_ executable: URL, _ arguments: [String], in directory: URL) -> StreamingCommand {
        var environment = ProcessInfo.processInfo.environment
        // A hook runs with git's environment; a buildpack must not act on this repository.
        for key in environment.keys where key.hasPrefix("GIT_") { environment[key] = nil }
        environment["GUST_APP"] = app.rawValue
        return StreamingCommand(executable: executable, arguments: arguments, environment: environment, workingDirectory: directory)
    }

    /// Runs `body`, telling the pusher the build is alive whenever it has been quiet too long.
    private func withHeartbeat<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let reporter = reporter
        let quietLimit = settings.heartbeat
        let started = ContinuousClock.now
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    if reporter.silence >= quietLimit {
                        reporter.detail("… still building (\(Int((ContinuousClock.now - started).seconds)) s)")
                    }
                }
                return nil
            }
            group.addTask { try await body() }
            defer { group.cancelAll() }
            while let value = try await group.next() {
                if let value { return value }
            }
            throw CancellationError()
        }
    }
}

/// Lines gathered from a short command (detect, release).
final class LineCollector: Sendable {
    private let storage = Mutex<[String]>([])
    var lines: [String] { storage.withLock { $0 } }
    func append(_ line: String) { storage.withLock { $0.append(line) } }
}

extension Duration {
    var minutesText: String {
        let total = Int(seconds)
        return total >= 60 && total % 60 == 0 ? "\(total / 60) min" : "\(total) s"
    }
}

