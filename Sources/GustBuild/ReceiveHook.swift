import Foundation
public import GustCore
import GustGit

/// What `gust-receive pre-receive` does for one push.
///
/// Every line it writes goes through the reporter, so the pusher sees it as
/// `remote: …`. Returns the exit status git acts on: non-zero rejects the push.
public struct ReceiveHook: Sendable {
    public var home: GustHome
    public var installation: Installation
    public var reporter: BuildReporter
    /// Where this hook was run: the app's bare repository.
    public var repositoryPath: String
    public var environment: [String: String]
    /// The watch on the pusher's connection (`PusherConnection`): gone, the build is stopped and nothing recorded.
    public var pusher: PusherConnection?

    public init(
        home: GustHome, installation: Installation, reporter: BuildReporter,
        repositoryPath: String, environment: [String: String]
    ) {
        self.home = home
        self.installation = installation
        self.reporter = reporter
        self.repositoryPath = repositoryPath
        self.environment = environment
    }

    /// The app a repository path belongs to: `GUST_HOME/repos/APP.git`.
    public func appName() throws -> AppName {
        let url = URL(fileURLWithPath: repositoryPath).standardizedFileURL.resolvingSymlinksInPath()
        let name = url.lastPathComponent
        guard name.hasSuffix(".git"), url.deletingLastPathComponent().path == home.repos.resolvingSymlinksInPath().path else {
            throw GustError("\(repositoryPath) is not an app repository under \(home.repos.path).")
        }
        return try AppName(String(name.dropLast(4)))
    }

    public func preReceive(input: String) async -> Int32 {
        do {
            let app = try appName()
            let store = try Store(home: home)
            _ = try store.requireApp(app)
            let updates = RefUpdate.parse(input)
            // Checked before anything is built, so a refused ref stores nothing of the push.
            if let refusal = updates.lazy.compactMap(\.refusal).first { throw refusal }
            try PushBounds.checkRefCount(updates)
            try PushBounds.checkSize(
                of: URL(fileURLWithPath: repositoryPath), quarantine: environment["GIT_QUARANTINE_PATH"],
                limit: try store.effectiveLimits(app).disk, app: app
            )
            for update in updates {
                try await receive(update, app: app, store: store)
            }
            return 0
        } catch {
            reporter.error(explain(error))
            return 1
        }
    }

    private func receive(_ update: RefUpdate, app: AppName, store: Store) async throws {
        guard update.isDeployBranch else {
            if !update.ref.hasPrefix("refs/tags/") {
                reporter.step("Accepted \(update.shortName) without building: only main or master deploys.")
            }
            return
        }
        guard !update.isDeletion else {
            throw GustError(
                "Deleting \(update.shortName) is refused: it is the branch \(app) deploys from.",
                hint: "Push another commit to \(update.shortName) instead, or `gust apps destroy \(app)` to remove the app."
            )
        }
        let lock = try FileLock(home.lock(app)) {
            reporter.step("Waiting for another deploy of \(app) to finish")
        }
        defer { withExtendedLifetime(lock) {} }

        let repository = try GitRepository(path: repositoryPath, environment: environment)
        let current = try repository.resolve(reference: update.ref)
        guard current == (update.isCreation ? nil : update.old) else {
            throw GustError(
                "\(update.shortName) moved to \(current.map { String($0.prefix(7)) } ?? "nothing") while this push waited.",
                hint: "Another push got there first: pull, merge and push again."
            )
        }
        try await build(update, app: app, store: store, repository: repository)
    }

    /// Exports the pushed tree, has gustd build it (relaying its lines), records the release and
    /// has gustd warm it. gustd runs the buildpack's scripts in the app's sandbox, in its cgroup tree.
    private func build(_ update: RefUpdate, app: AppName, store: Store, repository: GitRepository) async throws {
        // Nothing can be built or go live without gustd: say so before anything else.
        let admin = AdminClient(home: home, hangUp: pusher?.descriptor)
        guard admin.isRunning else { throw admin.notRunning() }
        let started = ContinuousClock.now
        let live = try store.app(app)?.liveVersion.flatMap { try store.release(app, version: $0) }
        let config = try store.config(app)  // secrets sealed: the release keeps them so
        let secretNames = try store.secretNames(app)
        reporter.mask(try store.secretValues(app))
        let description = "Deploy \(update.new.prefix(7))"
        // What an earlier push of this app left when its hook was killed (we hold the app's lock).
        Build.removeStaleWorkspaces(of: app, in: home)
        do {
            let export = Build(
                app: app, commit: update.new, home: home, buildpacks: [], config: [:], settings: BuildSettings(), reporter: reporter
            )
            let (workspace, commitTime) = try export.export(repository: repository)
            // gustd removes it when its build ends; this is for a gustd that never got to it.
            defer { NoFollowRemoval.removeTree(at: workspace) }
            let output = try admin.build(AdminBuildRequest(
                app: app.rawValue, commit: update.new, workspace: workspace.path, commitTime: commitTime,
                buildpacks: installation.buildpacks.path
            )) { reporter.raw($0) }
            let release = try store.recordRelease(app, NewRelease(
                status: .built, commit: update.new, buildpack: output.buildpack, artifact: output.artifact,
                artifactSize: output.artifactSize, process: output.process,
                buildSeconds: (ContinuousClock.now - started).seconds, description: description,
                config: config, secretNames: secretNames, log: reporter.log, stack: output.stack
            ))
            reporter.step("Built v\(release.version)")
            try warm(release, admin: admin, store: store, previous: live)
        } catch let rejected as RejectedPush {
            throw rejected
        } catch where pusher?.isGone == true {
            throw error  // nobody is left to read why, and a push never finished is no release
        } catch {
            let message = explain(error)
            reporter.error(message)
            reporter.error("Push rejected: \(app) \(live.map { "keeps serving v\($0.version)" } ?? "has no live release yet").")
            do {
                let failed = try store.recordRelease(app, NewRelease(
                    status: .failed, commit: update.new, buildSeconds: (ContinuousClock.now - started).seconds,
                    description: description, config: config, secretNames: secretNames, error: message,
                    log: reporter.log
                ))
                throw RejectedPush(version: failed.version)
            } catch let rejected as RejectedPush {
                throw rejected
            } catch {
                // A full disk, say: the push is rejected all the same, and nothing of it is stored.
                reporter.error("The failed build could not be recorded either: \(explain(error))")
                throw RejectedPush(version: nil)
            }
        }
    }

    /// The error as the pusher should read it: a full disk is named as such
    /// wherever it was met (writing the export, the build, the artifact, the store).
    func explain(_ error: any Error) -> String {
        let text = String(describing: error)
        let isDiskFull = (error as? GustError)?.code == 507 || (error as? CocoaError)?.code == .fileWriteOutOfSpace
            || text.contains("No space left on device") || text.contains("disk is full")
        guard isDiskFull, !text.contains("the disk is full") else { return text }
        return text + "\nThe disk holding \(home.path) is full (no space left on device): free space (old logs, unused artifacts) and push again."
    }
}

extension ReceiveHook {
    /// Hands the built release to gustd to start and check, relaying its
    /// progress; it serves only once git has accepted the push (post-receive
    /// switches to it), so a push git rejects never changes what serves.
    private func warm(_ release: Release, admin: AdminClient, store: Store, previous: Release?) throws {
        let app = release.app
        let recorded = reporter.log.count
        reporter.step("Starting v\(release.version)")
        do {
            try admin.deploy(app: app, version: release.version, phase: .warm) { reporter.detail($0) }
            try? store.appendLog(app, version: release.version, String(reporter.log.dropFirst(recorded)))
        } catch {
            let message = explain(error)
            reporter.error(message)
            reporter.error("Push rejected: \(app) \(previous.map { "keeps serving v\($0.version)" } ?? "has no live release yet").")
            _ = try? store.markFailed(app, version: release.version, error: message, appendingLog: String(reporter.log.dropFirst(recorded)))
            throw RejectedPush(version: release.version)
        }
    }
}

/// The push was rejected and the reason already reported.
struct RejectedPush: Error, CustomStringConvertible {
    /// The failed release recorded, or nil if none could be (a full disk).
    var version: Int?
    var description: String {
        version.map { "v\($0) was not deployed; `gust releases show` has its log." } ?? "Nothing was deployed or recorded."
    }
}
