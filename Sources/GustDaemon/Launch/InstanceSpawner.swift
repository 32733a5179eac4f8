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
}

/// How a launcher starts an instance's process: as gustd's user (`DirectSpawner`)
/// or in a bubblewrap sandbox as the app's own uid (`SandboxSpawner`). The
/// launcher does the rest (environment, connect, manifest) the same way for both.
protocol InstanceSpawner: Sendable {
    /// Prepares what the instance `id` of the release unpacked at `release` needs before it starts.
    func layout(id: String, release: URL) throws -> InstanceLayout

    /// `confinement` (the instance's cgroups and rlimits) applies to the process spawned, before its
    /// program runs: for a sandbox, bwrap's wrapper, so everything under it starts confined.
    func spawn(
        executable: String, layout: InstanceLayout, release: URL, environment: [String: String], marker: String,
        confinement: SpawnConfinement,
        onOutput: @escaping @Sendable ([String], InstanceProcess.StandardStream) -> Void,
        onExit: @escaping @Sendable (Int32) -> Void
    ) throws -> InstanceProcess

    /// Whether app code runs in a sandbox: then no zygote (it would run as gustd's user, outside one).
    var isSandboxed: Bool { get }
}

/// The process as gustd's own user, with gustd's view of the filesystem.
struct DirectSpawner: InstanceSpawner {
    let records: InstanceRecords
    let home: GustHome

    func layout(id: String, release: URL) throws -> InstanceLayout {
        let socket = records.socketPath(id: id)
        return InstanceLayout(
            hostSocket: socket, socket: socket, recordsSocket: home.recordsSocket.path, releaseDirectory: release.path,
            path: ProcessInfo.processInfo.environment["PATH"] ?? Sandbox.path
        )
    }

    var isSandboxed: Bool { false }

    func spawn(
        executable: String, layout: InstanceLayout, release: URL, environment: [String: String], marker: String,
        confinement: SpawnConfinement,
        onOutput: @escaping @Sendable ([String], InstanceProcess.StandardStream) -> Void,
        onExit: @escaping @Sendable (Int32) -> Void
    ) throws -> InstanceProcess {
        try InstanceProcess(
            executable: release.appendingPathComponent(executable).path, environment: environment, directory: release.path,
            marker: marker, confinement: confinement, onOutput: onOutput, onExit: onExit
        )
    }
}
