#if canImport(Glibc)
import Glibc
#endif
public import Foundation
public import GustCore
import GustGit

/// Creating and destroying apps: the row in the store and the bare repository
/// with Gust's hooks. Shared by `gust apps` and the SSH first-push path.
public enum AppAdmin {
    /// The hooks installed into every app repository, from `hooks/`.
    static let hookNames = ["pre-receive", "post-receive"]

    @discardableResult
    public static func create(_ name: AppName, store: Store, installation: Installation) throws -> App {
        let home = store.home
        guard try store.app(name) == nil else {
            throw GustError("App '\(name)' already exists.", code: 409, hint: "See `gust apps list`.")
        }
        let repository = home.repository(name)
        if FileManager.default.fileExists(atPath: repository.path) {
            throw GustError(
                "\(repository.path) already exists but no app '\(name)' is recorded.",
                code: 409, hint: "Move that directory away, then create the app again."
            )
        }
        // No app of the name is recorded, so any data or log under it is a destroyed app's (written
        // after its destroy removed them, or left by a destroy that stopped half-way): the next
        // tenant of the name starts with none of it.
        try removeTree(home.data(name))
        let log = AppLog(home: home, app: name)
        for file in log.files + [log.lockFile] { try? FileManager.default.removeItem(at: file) }
        // Built under a temporary name and renamed, so a half-made repository never has the app's name.
        let staging = home.repos.appendingPathComponent(".\(name).git.\(UUID().uuidString.prefix(8))")
        do {
            _ = try GitRepository.initBare(at: staging.path)
            try installHooks(into: staging, home: home, installation: installation)
            try FileManager.default.moveItem(at: staging, to: repository)
        } catch {
            try? FileManager.default.removeItem(at: staging)
            throw error
        }
        do {
            return try store.createApp(name)
        } catch {
            try? FileManager.default.removeItem(at: repository)
            throw error
        }
    }

    /// Writes the hook shims, naming `gust-receive` and the home by absolute path
    /// so that git can run them from any working directory.
    public static func installHooks(into repository: URL, home: GustHome, installation: Installation) throws {
        let hooks = repository.appendingPathComponent("hooks")
        try FileManager.default.createDirectory(at: hooks, withIntermediateDirectories: true)
        for hook in hookNames {
            let template = try String(contentsOf: installation.hooks.appendingPathComponent(hook), encoding: .utf8)
            let script = template
                .replacingOccurrences(of: "@GUST_RECEIVE@", with: shellQuoted(installation.executable("gust-receive").path))
                .replacingOccurrences(of: "@GUST_HOME@", with: shellQuoted(home.path))
            try AtomicFile.write(Data(script.utf8), to: hooks.appendingPathComponent(hook), mode: 0o700)
        }
    }

    /// Removes the app, its repository, releases, cache, data and the
    /// artifacts no other app uses.
    public static func destroy(_ name: AppName, store: Store) throws -> (releases: Int, artifacts: Int) {
        let home = store.home
        _ = try store.requireApp(name)
        let releases = try store.releases(name)
        var removedArtifacts = 0
        for digest in Set(releases.compactMap(\.artifact)) where try !store.isArtifactShared(digest, outside: name) {
            // Spared if another app's build has packed it since (its release not recorded yet).
            if (try? store.removeArtifact(digest, of: releases)) != nil { removedArtifacts += 1 }
        }
        try store.deleteApp(name)
        // gustd stops the app's instances before their release directories go.
        try? AdminClient(home: home).reconcile()
        for directory in [home.repository(name), home.releases(name), home.cache(name), home.data(name)] {
            try removeTree(directory)
        }
        // Its log too: the next app made under the name is another tenant's, and read the last
        // one's output (whatever its code printed) with `gust logs`. (`create` removes them again.)
        let log = AppLog(home: home, app: name)
        for file in log.files + [log.lockFile] {
            try? FileManager.default.removeItem(at: file)
        }
        return (releases.count, removedArtifacts)
    }

    /// Removes a tree of the home (an app's repository, releases, cache or data), also where a
    /// release left it read-only, without following a link in it: each level is opened relative
    /// to the one above (`NoFollowRemoval`), and a read-only directory of ours is opened to us
    /// through its own descriptor. Walking by path names and `chmod`ing each directory found, a
    /// directory the app's code (under `--sandbox none`, gustd's user) swapped for a link between
    /// the check and the `chmod` had root, running `gust apps destroy` or `gust releases prune`,
    /// open what the link named (`/root`) to everyone.
    static func removeTree(_ url: URL) throws {
        NoFollowRemoval.removeTree(at: url)
        var info = stat()
        if lstat(url.path, &info) == 0 {
            throw GustError("Could not remove all of \(url.path) (deeper than \(NoFollowRemoval.depthLimit) levels, or not ours to remove).",
                            hint: "Remove what is left by hand.")
        }
    }

    static func shellQuoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
