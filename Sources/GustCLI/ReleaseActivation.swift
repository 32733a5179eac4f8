import Foundation
import GustCore

/// Making a release that reuses an existing artifact live: what rollback and
/// config changes share (Heroku's semantics: history only grows).
enum ReleaseActivation {
    /// Records a new release from `base` with `change` applied, asks gustd to
    /// make it live, and streams gustd's progress to stdout.
    @discardableResult
    static func release(
        from base: Release, store: Store, description: String, rollbackOf: Int? = nil,
        config: [String: String], secretNames: [String]
    ) throws -> Release {
        let admin = AdminClient(home: store.home)
        guard admin.isRunning else { throw admin.notRunning(then: "run this again") }
        // One deploy of an app at a time, whether it comes from a push or from here.
        let lock = try FileLock(store.home.lock(base.app)) {
            print("-----> Waiting for another deploy of \(base.app) to finish")
        }
        defer { withExtendedLifetime(lock) {} }
        let release = try store.recordReuse(
            of: base, description: description, rollbackOf: rollbackOf, config: config, secretNames: secretNames
        )
        let secrets = try store.secretValues(base.app)
        print("-----> \(description): v\(release.version)")
        let url: String
        do {
            url = try admin.deploy(app: base.app, version: release.version) { line in
                // What the release's instance printed as it started: the app's, shown as text, never
                // as escapes the terminal would act on (a clipboard write, a cleared screen).
                print("       " + line.maskingSecrets(secrets).visibleAtTerminal)
                fflush(nil)  // progress is read as it happens, also through a pipe or ssh
            }
        } catch {
            try store.markFailed(base.app, version: release.version, error: String(describing: error), appendingLog: "")
            throw error
        }
        print("       \(url)")
        print("-----> v\(release.version) is live")
        let (actor, source) = Store.cliActor()
        try? store.recordActivity(
            app: base.app, actor: actor, source: source, action: rollbackOf == nil ? "config" : "rollback",
            detail: "\(description): v\(release.version)"
        )
        return release
    }
}
