import Foundation
import GustCore
import GustGit

/// What `gust-receive post-receive` does once git has written the refs of a
/// push: tag each new release vN, then ask gustd to switch the deploy
/// branch's release live (pre-receive only warmed it).
///
/// The push is accepted whatever happens here; what could not be done is
/// said, and gustd converges on its next start (ReleaseAcceptance).
extension ReceiveHook {
    public func postReceive(input: String) -> Int32 {
        let updates = RefUpdate.parse(input)
        do {
            let app = try appName()
            let store = try Store(home: home)
            let repository = try GitRepository(path: repositoryPath)
            let deployed = updates.last { $0.isDeployBranch && !$0.isDeletion }
            let switched = deployed.flatMap { switchLive($0, app: app, store: store) }
            do {
                let tags = try ReleaseTags.tagMissing(app, store: store, repository: repository)
                if !tags.isEmpty { reporter.step("Tagged \(tags.joined(separator: ", "))") }
                // An app deployed from `master` gets HEAD there, so that a clone checks it out.
                if repository.headIsUnborn, let deployed { try repository.pointHead(at: deployed.ref) }
            } catch {
                reporter.error("Could not tag the release: \(error)")
            }
            if let switched {
                reporter.detail(switched.url)
                reporter.step("v\(switched.version) is live")
            }
        } catch {
            reporter.error(String(describing: error))
        }
        return 0
    }

    /// Switches to the release pre-receive built for `update` and warmed;
    /// returns it and the app's URL, or nil (said why) if it is not live.
    private func switchLive(_ update: RefUpdate, app: AppName, store: Store) -> (version: Int, url: String)? {
        guard let release = try? store.releases(app).first(where: { $0.commit == update.new }), release.status == .built else {
            return nil
        }
        let version = release.version
        // One deploy of an app at a time, as for pushes and rollbacks.
        let lock = try? FileLock(home.lock(app)) { reporter.step("Waiting for another deploy of \(app) to finish") }
        defer { withExtendedLifetime(lock) {} }
        let live = try? store.app(app)?.liveVersion
        let keeps = "\(app) \(live.map { "keeps serving v\($0)" } ?? "has no live release yet")"
        let admin = AdminClient(home: home)
        let recorded = reporter.log.count
        do {
            let url = try admin.deploy(app: app, version: version, phase: .switch) { reporter.detail($0) }
            try? store.appendLog(app, version: version, String(reporter.log.dropFirst(recorded)))
            let (actor, _) = Store.cliActor()
            try? store.recordActivity(app: app, actor: actor, source: "push", action: "push", detail: "v\(version) (\(release.shortCommit ?? "-")) is live")
            return (version, url)
        } catch let error as GustError where error.code == 409 {
            // A newer release went live meanwhile: this one stays built, in history.
            reporter.error(error.description)
            return nil
        } catch {
            if admin.isRunning {
                let message = "gustd could not switch to v\(version): \(error)"
                reporter.error(message)
                reporter.error("git accepted the push, but \(keeps); push a fix, or `gust rollback \(app)`.")
                _ = try? store.markFailed(app, version: version, error: message, appendingLog: String(reporter.log.dropFirst(recorded)))
            } else {
                reporter.error("git accepted the push, but gustd stopped before switching \(app) to v\(version): \(error)")
                reporter.error("gustd switches to v\(version) when it next starts (`gustd --home \(home.path)`); until then \(keeps).")
            }
            return nil
        }
    }
}
