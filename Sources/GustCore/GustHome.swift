#if canImport(Glibc)
import Glibc
#endif
public import Foundation

/// The layout of `GUST_HOME`, as design.md draws it.
///
/// Paths for an app are only ever built from an `AppName`, never from raw input.
public struct GustHome: Sendable {
    public let root: URL

    /// `--home` wins, then `GUST_HOME`, then `~/.gust`.
    public static func resolve(_ explicit: String?) -> GustHome {
        if let explicit, !explicit.isEmpty { return GustHome(path: explicit) }
        if let env = ProcessInfo.processInfo.environment["GUST_HOME"], !env.isEmpty {
            return GustHome(path: env)
        }
        return GustHome(path: NSHomeDirectory() + "/.gust")
    }

    public init(path: String) {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        root = URL(fileURLWithPath: absolute).standardizedFileURL
    }

    public var path: String { root.path }
    public var database: URL { root.appendingPathComponent("gust.sqlite") }
    public var repos: URL { root.appendingPathComponent("repos") }
    public var artifacts: URL { root.appendingPathComponent("artifacts") }
    public var releases: URL { root.appendingPathComponent("releases") }
    public var cache: URL { root.appendingPathComponent("cache") }
    public var data: URL { root.appendingPathComponent("data") }
    public var logs: URL { root.appendingPathComponent("logs") }
    public var ssh: URL { root.appendingPathComponent("ssh") }
    public var run: URL { root.appendingPathComponent("run") }
    public var locks: URL { root.appendingPathComponent("locks") }
    public var tmp: URL { root.appendingPathComponent("tmp") }
    /// Certificates gustd got by ACME and its ACME account keys (files 0600).
    public var tls: URL { root.appendingPathComponent("tls") }
    /// Stacks: one directory per `Stack.reference`, each a read-only `rootfs/` and its `stack.json`.
    public var stacks: URL { root.appendingPathComponent("stacks") }
    public var adminSocket: URL { run.appendingPathComponent("gustd.sock") }
    /// The records channel that gustd offers its instances (`gust.records`).
    public var recordsSocket: URL { run.appendingPathComponent("records.sock") }
    public var authorizedKeys: URL { ssh.appendingPathComponent("authorized_keys") }
    /// There while `gust restore` fills the home: a restore that stopped half-way is taken up
    /// by the next (which replaces what it left), and gustd does not start on it.
    public var restoreUnfinished: URL { root.appendingPathComponent("restore-unfinished") }
    /// The lock one gustd per home holds; `gust restore` holds it too, so no gustd starts meanwhile.
    public var daemonLock: URL { run.appendingPathComponent("gustd.lock") }

    public func repository(_ app: AppName) -> URL { repos.appendingPathComponent("\(app).git") }
    public func cache(_ app: AppName) -> URL { cache.appendingPathComponent(app.rawValue) }
    public func releases(_ app: AppName) -> URL { releases.appendingPathComponent(app.rawValue) }
    public func release(_ app: AppName, version: Int) -> URL {
        releases(app).appendingPathComponent("v\(version)")
    }
    /// A stack's directory; `reference` must have passed `Stack.Reference`'s checks.
    public func stack(_ reference: Stack.Reference) -> URL { stacks.appendingPathComponent(reference.description) }
    public func data(_ app: AppName) -> URL { data.appendingPathComponent(app.rawValue) }
    public func lock(_ app: AppName) -> URL { locks.appendingPathComponent("\(app).lock") }
    public func artifact(digest: String, fileExtension: String) -> URL {
        artifacts.appendingPathComponent("\(digest).\(fileExtension)")
    }

    /// The home's owner, when this process is root and the home is another user's (gustd's): root's
    /// commands make what they add to it that user's, and open its store as that user.
    public var ownerWhenRoot: FileOwner? {
        guard geteuid() == 0, let owner = FileOwner(of: root.path), owner.uid != 0 else { return nil }
        return owner
    }

    /// Creates the layout on first use. Safe to call from every command.
    ///
    /// The home holds the store (tokens, secrets), keys, logs and every app's code
    /// and records: it and each directory in it are for gustd's user alone (0700),
    /// and a home made by an earlier version is tightened the same way. A name that is a link
    /// is not followed: root opens the store too, and gustd's user could have planted it.
    ///
    /// Root, opening the home of another user (`gust stacks list`, `gust backup`), makes the
    /// directories a home of an earlier version lacks that user's: made root's, gustd could not
    /// write in them.
    public func prepare() throws {
        let fm = FileManager.default
        var status = stat()
        let owner = ownerWhenRoot.map { ($0.uid, $0.gid) }
        for dir in [root, repos, artifacts, releases, cache, data, logs, ssh, run, locks, tmp, tls] {
            let existed = lstat(dir.path, &status) == 0
            try fm.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            // lchown: a link swapped in since the mkdir is changed itself, not what it names.
            if !existed, let (uid, gid) = owner { lchown(dir.path, uid, gid) }
            NoFollowMode.setDirectory(dir.path, 0o700)  // a link planted there is left alone (root opens the store too)
        }
    }

    /// Files and directories Gust's processes create are their user's alone:
    /// each executable (gust, gust-receive, gustd) calls this first, and what it
    /// starts (git, buildpacks) inherits it.
    public static func restrictNewFiles() {
        umask(0o077)
    }
}
