#if canImport(Glibc)
import Glibc
#endif
import CGustSystem
import Foundation
import GustBuild
import GustCore
import Synchronization

/// Starts an instance in a bubblewrap sandbox (`GustBuild.Sandbox`) as its
/// app's own host uid: the release read-only at `/app`, the instance's socket
/// directory `run/instances/ID/` at `/run/gust` — the only path it shares with
/// gustd — holding the instance's socket and its records channel
/// (`records.sock`, a hard link to gustd's records listener, which takes only
/// the instance's own token). The database, `ssh/`, other apps' releases and
/// records, gustd's admin socket and the shared records path do not exist inside.
final class SandboxSpawner: InstanceSpawner {
    let sandbox: Sandbox
    let records: InstanceRecords
    let home: GustHome
    /// The app's host uid and gid; nil when gustd has no subordinate range.
    let ids: (uid: UInt32, gid: UInt32)?
    /// Whether the release has been made readable by the app's uid.
    private let opened = Mutex(false)

    init(sandbox: Sandbox, records: InstanceRecords, home: GustHome, app number: Int) throws {
        self.sandbox = sandbox
        self.records = records
        self.home = home
        ids = try sandbox.identity.hostIDs(ofApp: number)
    }

    func layout(id: String, release: URL) throws -> InstanceLayout {
        try makeSocketDirectory(records.socketDirectory(id: id), for: id)
        if ids != nil { try openForApp(release) }
        return InstanceLayout(
            hostSocket: records.socketDirectory(id: id) + "/instance.sock", socket: Sandbox.socketDirectory + "/instance.sock",
            recordsSocket: Sandbox.socketDirectory + "/records.sock", releaseDirectory: Sandbox.appDirectory, path: Sandbox.path
        )
    }

    /// A fork shares its zygote's sandbox, so its socket directory is one inside the zygote's
    /// (`run/instances/ZYGOTE/ID/`, `/run/gust/ID/` inside): its own socket and its own link to
    /// the records listener, seen by the other forks of the release (the same app) and gustd.
    func forkLayout(id: String, zygote: String, release: URL) throws -> InstanceLayout {
        let directory = records.socketDirectory(id: zygote) + "/" + id
        try makeSocketDirectory(directory, for: id)
        let inside = Sandbox.socketDirectory + "/" + id
        return InstanceLayout(
            hostSocket: directory + "/instance.sock", socket: inside + "/instance.sock",
            recordsSocket: inside + "/records.sock", releaseDirectory: Sandbox.appDirectory, path: Sandbox.path
        )
    }

    /// The directory of one instance's (or zygote's) socket and records channel.
    private func makeSocketDirectory(_ directory: String, for id: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        // Under run/ (0700, gustd's), so reachable only by gustd and, through its mount, this instance,
        // whose uid must create its socket there.
        chmod(directory, ids == nil ? 0o700 : 0o777)
        let records = directory + "/records.sock"
        // gustd's records listener binds as its services start, perhaps just after the first instances.
        for _ in 0..<200 where access(home.recordsSocket.path, F_OK) != 0 { usleep(10_000) }
        guard link(home.recordsSocket.path, records) == 0 else {
            throw GustError("Cannot give instance \(id) its records channel: \(String(cString: strerror(errno)))")
        }
    }

    var isSandboxed: Bool { true }
    var appUIDInside: UInt32? { ids == nil ? nil : SandboxIdentity.appUIDInside }
    func passedDescriptor(_ index: Int) -> Int32 { Sandbox.passedDescriptor(index) }

    func spawn(
        executable: String, layout: InstanceLayout, release: URL, environment: [String: String], marker: String,
        confinement: SpawnConfinement, passing: [Int32],
        onOutput: @escaping @Sendable ([String], InstanceProcess.StandardStream) -> Void,
        onExit: @escaping @Sendable (Int32) -> Void
    ) throws -> InstanceProcess {
        let socketDirectory = URL(fileURLWithPath: layout.hostSocket).deletingLastPathComponent().path
        // The app's `gust limits --tmp` sizes this instance's /tmp.
        var sized = sandbox
        if let tmpBytes = confinement.tmpBytes { sized.tmpBytes = tmpBytes }
        let argv = sized.command(
            app: ids,
            mounts: [
                .init(release.path, at: Sandbox.appDirectory),
                .init(socketDirectory, at: Sandbox.socketDirectory, writable: true),
            ],
            directory: Sandbox.appDirectory, purpose: .instance,
            executable: Sandbox.appDirectory + "/" + executable, arguments: [], passing: passing.count
        )
        var block: [Int32] = [-1, -1]
        if ids != nil {
            guard gust_pipe_cloexec(&block) == 0 else { throw SpawnError("Cannot create a pipe: \(String(cString: strerror(errno)))") }
        }
        // A SIGKILLed gustd takes the wrapper with it, and so bwrap (--die-with-parent) and the sandbox.
        var confinement = confinement
        confinement.diesWithGustd = true
        let (ids, sandbox) = (ids, sandbox)
        let writeEnd = block[1]
        return try InstanceProcess(
            executable: argv[0], arguments: Array(argv.dropFirst()), environment: environment, directory: "/",
            standardInput: ids == nil ? nil : block[0], marker: marker,
            confinement: confinement, passing: passing, onOutput: onOutput, onExit: onExit,
            started: { pid in try sandbox.release(pid, app: ids, unblocking: ids == nil ? nil : writeEnd) }
        )
    }

    /// The release's files are gustd's (mode 0600/0700 under its umask): others get to read them
    /// (`Sandbox.openToOthers`), once per release.
    private func openForApp(_ release: URL) throws {
        try opened.withLock { done in
            guard !done else { return }
            try Sandbox.openToOthers(release.path)
            done = true
        }
    }
}
