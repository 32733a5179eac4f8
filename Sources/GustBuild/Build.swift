public import Foundation
public import GustCore
public import GustGit
import Synchronization

/// The build of one pushed commit: export → detect → compile → release → pack.
///
/// Two halves, in two processes. The hook exports the pushed tree into a
/// workspace of its own under `GUST_HOME/tmp` (`export(repository:)`: libgit2
/// reads git's quarantine, which only the hook's environment names). gustd
/// builds it (`run(in:commitTime:)`): detect, compile and release run in the
/// app's sandbox (detect in one, compile and release in another, in a cgroup
/// of gustd's tree: Build+Steps), then the tree is packed. Produces an artifact and what the release row needs;
/// records nothing. The workspace is removed whatever happens.
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
    /// The app's disk limit (`gust limits APP --disk`), for its build cache and its slug; nil: unbounded.
    public var cacheLimit: Int?
    /// The app's limits (`Store.effectiveLimits`): the build's steps run under its memory, pids and
    /// cpu (raised to `buildFloor`), in a cgroup beside its instances'; nil: none.
    public var limits: AppLimits?
    /// How gustd bounds processes (`LimitMechanism.detect`): a build's steps get cgroups `APP/build-…`
    /// in gustd's tree; rlimits: compile gets rlimits instead (`BuildRlimits`); nil: neither.
    package var limitMechanism: LimitMechanism?
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

    // MARK: The hook's half

    /// A workspace of the push's own under `GUST_HOME/tmp` (`build-APP-…`) with the commit exported
    /// into `app/`, for gustd to build; removed again if the export fails.
    public func export(repository: GitRepository) throws -> (workspace: URL, commitTime: Int) {
        let workspace = try makeWorkspace(Self.workspacePrefix(app))
        do {
            let source = workspace.appendingPathComponent("app")
            try FileManager.default.createDirectory(at: source, withIntermediateDirectories: false)
            reporter.step("Exporting \(commit.prefix(7))")
            let summary = try repository.export(commit: commit, to: source)
            reporter.detail("\(summary.files) files, \(ByteCount(summary.bytes))")
            return (workspace, summary.commitTime)
        } catch {
            NoFollowRemoval.removeTree(at: workspace)
            throw error
        }
    }

    static func workspacePrefix(_ app: AppName) -> String { "build-\(app)-" }

    /// Whether `directory` is a push's workspace of `app` (`GUST_HOME/tmp/build-APP-XXXXXXXX`): gustd
    /// builds in nothing else, and the hook sweeps nothing else.
    public static func isWorkspace(_ directory: URL, of app: AppName, in home: GustHome) -> Bool {
        let url = directory.standardizedFileURL
        let name = url.lastPathComponent
        guard url.deletingLastPathComponent().path == home.tmp.standardizedFileURL.path, name.hasPrefix(workspacePrefix(app)) else {
            return false
        }
        // The random part: eight hex digits, so `cats-2`'s are never `cats`'.
        let suffix = name.dropFirst(workspacePrefix(app).count)
        return suffix.count == 8 && suffix.allSatisfy(\.isHexDigit)
    }

    /// Removes what pushes of `app` cut short left (a hook killed while it exported). Called under the
    /// app's deploy lock, when no other push of it is under way.
    public static func removeStaleWorkspaces(of app: AppName, in home: GustHome) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: home.tmp.path)) ?? [] {
            let url = home.tmp.appendingPathComponent(name)
            if isWorkspace(url, of: app, in: home) { NoFollowRemoval.removeTree(at: url) }
        }
    }

    // MARK: gustd's half

    /// Builds the tree the hook exported into `workspace`'s `app/`: ENV_DIR from the app's config,
    /// detect, compile and release, then the artifact. The workspace is removed whatever happens,
    /// a build cancelled because its hook went away included.
    public func run(in workspace: URL, commitTime: Int?) async throws -> Output {
        // Off the caller's executor (gustd's event loops): see BuildExecutor.
        try await withTaskExecutorPreference(BuildExecutor.shared) {
            let result: Result<Output, any Error>
            do { result = .success(try await build(in: workspace, commitTime: commitTime)) } catch { result = .failure(error) }
            // The build's tree is the app's: removed without following a link it could swap in.
            _ = try? await BlockingWork.run { NoFollowRemoval.removeTree(at: workspace) }
            return try result.get()
        }
    }

    private func build(in workspace: URL, commitTime: Int?) async throws -> Output {
        let deadline = ContinuousClock.now + settings.timeout
        let source = workspace.appendingPathComponent("app")
        let envDirectory = workspace.appendingPathComponent("env")
        try writeEnvironment(to: envDirectory)
        let buildpack = try await detect(source, deadline: deadline)
        let stack = try chooseStack(for: buildpack, source: source)
        let process = try await compileAndRelease(
            buildpack, source: source, env: envDirectory, workspace: workspace, deadline: deadline, stack: stack
        )

        try await checkSlug(source)
        let started = ContinuousClock.now
        let artifact = try await BlockingWork.run { [home] in
            try Artifacts.pack(source, into: home.artifacts, clampingTimesTo: commitTime)
        }
        let seconds = (ContinuousClock.now - started).seconds
        reporter.step("Packed \(ByteCount(artifact.size)) in \(String(format: "%.1f", seconds)) s")
        return Output(buildpack: buildpack.name, process: process, artifact: artifact, stack: stack)
    }

    /// Detects, compiles and reads the web process of a tree already in place,
    /// as `run` does between export and pack: `gust dev` builds a copy of a
    /// work tree this way, with the same buildpacks and cache.
    public func compile(tree source: URL) async throws -> (buildpack: String, process: String) {
        let deadline = ContinuousClock.now + settings.timeout
        let workspace = try makeWorkspace("dev-\(app)-")
        defer { NoFollowRemoval.removeTree(at: workspace) }
        let envDirectory = workspace.appendingPathComponent("env")
        try writeEnvironment(to: envDirectory)
        let buildpack = try await detect(source, deadline: deadline)
        let process = try await compileAndRelease(
            buildpack, source: source, env: envDirectory, workspace: workspace, deadline: deadline, stack: nil
        )
        return (buildpack.name, process)
    }

    private func makeWorkspace(_ prefix: String) throws -> URL {
        let dir = home.tmp.appendingPathComponent(prefix + UUID().uuidString.prefix(8).lowercased())
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

    /// Runs `body`, telling the pusher the build is alive whenever it has been quiet too long.
    func withHeartbeat<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
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

/// Lines gathered from a short command (detect, release): the first `limit` of them.
final class LineCollector: Sendable {
    private let storage = Mutex<[String]>([])
    private let limit = 200
    var lines: [String] { storage.withLock { $0 } }
    func append(_ line: String) {
        storage.withLock { if $0.count < limit { $0.append(line) } }
    }
}

extension Duration {
    var minutesText: String {
        let total = Int(seconds)
        return total >= 60 && total % 60 == 0 ? "\(total / 60) min" : "\(total) s"
    }
}
