import Foundation
import GustBuild
import GustCore

/// Where an instance's files are, seen from gustd and seen from the instance.
struct InstanceLayout: Sendable {
    /// The socket gustd connects to.
    var hostSocket: String
    /// `GUST_SOCKET`, `GUST_RECORDS_SOCKET` and the release directory as the instance sees them.
    var socket: String
    var recordsSocket: String
    var releaseDirectory: String
    /// The instance's PATH.
    var path: String
    /// Whether the instance binds its socket itself, in a socket directory it can write in: a release
    /// recorded before gustd handed instances their listening socket (`Release.passesListener`).
    var bindsOwnSocket = false
}

/// How a launcher starts an instance's process: as gustd's user (`DirectSpawner`)
/// or in a bubblewrap sandbox as the app's own uid (`SandboxSpawner`). The
/// launcher does the rest (environment, connect, manifest) the same way for both.
protocol InstanceSpawner: Sendable {
    /// Prepares what the instance `id` of the release unpacked at `release` needs before it starts.
    /// `bindsOwnSocket`: the instance's runtime binds its socket itself (`InstanceLayout.bindsOwnSocket`).
    func layout(id: String, release: URL, bindsOwnSocket: Bool) throws -> InstanceLayout

    /// Where the instance `id` forked from the zygote `zygote` (started with `layout(id: zygote, …)`)
    /// has its socket and records channel, seen from gustd and from inside the zygote's process.
    func forkLayout(id: String, zygote: String, release: URL, bindsOwnSocket: Bool) throws -> InstanceLayout

    /// `executable` is a path inside the release, run with `arguments`.
    /// `confinement` (the instance's cgroups and rlimits) applies to the process spawned, before its
    /// program runs: for a sandbox, bwrap, so everything under it starts confined.
    /// `passing`: descriptors the program gets (a zygote's control socket), as `passedDescriptor(0)`, ….
    func spawn(
        executable: String, arguments: [String], layout: InstanceLayout, release: URL, environment: [String: String], marker: StragglerMarker,
        confinement: SpawnConfinement, passing: [Int32],
        onOutput: @escaping @Sendable ([String], InstanceProcess.StandardStream) -> Void,
        onExit: @escaping @Sendable (Int32) -> Void
    ) throws -> InstanceProcess

    /// The descriptor the `index`th of `passing` is, for the program spawned.
    func passedDescriptor(_ index: Int) -> Int32

    /// Whether app code runs in a sandbox (its zygote too: its forks share the zygote's sandbox).
    var isSandboxed: Bool { get }

    /// The uid that app code runs as inside its sandbox's user namespace, when it is a uid of the
    /// app's own on the host (a subordinate range); nil when it runs as gustd's uid on the host.
    var appUIDInside: UInt32? { get }

    /// That uid as the host sees it (what `SO_PEERCRED` reports of the app's processes to gustd);
    /// nil when app code runs as gustd's uid.
    var appUIDOnHost: UInt32? { get }
}

extension InstanceSpawner {
    func spawn(
        executable: String, layout: InstanceLayout, release: URL, environment: [String: String], marker: StragglerMarker,
        confinement: SpawnConfinement,
        onOutput: @escaping @Sendable ([String], InstanceProcess.StandardStream) -> Void,
        onExit: @escaping @Sendable (Int32) -> Void
    ) throws -> InstanceProcess {
        try spawn(
            executable: executable, arguments: [], layout: layout, release: release, environment: environment, marker: marker,
            confinement: confinement, passing: [], onOutput: onOutput, onExit: onExit
        )
    }
}

/// The process as gustd's own user, with gustd's view of the filesystem.
struct DirectSpawner: InstanceSpawner {
    let records: InstanceRecords
    let home: GustHome

    func layout(id: String, release: URL, bindsOwnSocket: Bool) throws -> InstanceLayout {
        let socket = records.socketPath(id: id)
        return InstanceLayout(
            hostSocket: socket, socket: socket, recordsSocket: home.recordsSocket.path, releaseDirectory: release.path,
            path: ProcessInfo.processInfo.environment["PATH"] ?? Sandbox.path, bindsOwnSocket: bindsOwnSocket
        )
    }

    func forkLayout(id: String, zygote: String, release: URL, bindsOwnSocket: Bool) throws -> InstanceLayout {
        try layout(id: id, release: release, bindsOwnSocket: bindsOwnSocket)
    }

    var isSandboxed: Bool { false }
    var appUIDInside: UInt32? { nil }
    var appUIDOnHost: UInt32? { nil }
    func passedDescriptor(_ index: Int) -> Int32 { Int32(3 + index) }

    func spawn(
        executable: String, arguments: [String], layout: InstanceLayout, release: URL, environment: [String: String], marker: StragglerMarker,
        confinement: SpawnConfinement, passing: [Int32],
        onOutput: @escaping @Sendable ([String], InstanceProcess.StandardStream) -> Void,
        onExit: @escaping @Sendable (Int32) -> Void
    ) throws -> InstanceProcess {
        try InstanceProcess(
            executable: release.appendingPathComponent(executable).path, arguments: arguments, environment: environment,
            directory: release.path,
            marker: marker, confinement: confinement, passing: passing, onOutput: onOutput, onExit: onExit
        )
    }
}
