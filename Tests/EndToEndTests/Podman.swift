import Foundation
import GustTesting

/// Podman with a configuration and storage of its own under a scratch
/// directory: this machine has no /etc/containers/containers.conf, and crun
/// refuses its hybrid cgroups, so every call brings `CONTAINERS_CONF`
/// (cgroupfs, runc, no default ulimits) and `CONTAINERS_STORAGE_CONF`
/// (a vfs store), and nothing is shared with other podman users.
struct Podman {
    let root: URL

    init(root: URL) throws {
        self.root = root
        let fm = FileManager.default
        for dir in ["graph", "run", "net", "tmp"] {
            try fm.createDirectory(at: root.appendingPathComponent(dir), withIntermediateDirectories: true)
        }
        try """
            [containers]
            default_ulimits = []
            [engine]
            cgroup_manager = "cgroupfs"
            runtime = "runc"
            events_logger = "file"
            tmp_dir = "\(root.path)/tmp"
            [network]
            network_config_dir = "\(root.path)/net"
            """.write(to: root.appendingPathComponent("containers.conf"), atomically: true, encoding: .utf8)
        try """
            [storage]
            driver = "vfs"
            graphroot = "\(root.path)/graph"
            runroot = "\(root.path)/run"
            """.write(to: root.appendingPathComponent("storage.conf"), atomically: true, encoding: .utf8)
    }

    var environment: [String: String] {
        ["CONTAINERS_CONF": root.appendingPathComponent("containers.conf").path,
         "CONTAINERS_STORAGE_CONF": root.appendingPathComponent("storage.conf").path]
    }

    @discardableResult
    func run(_ arguments: [String], input: String? = nil, timeout: TimeInterval = 180) throws -> CommandResult {
        try Command.run("podman", arguments, environment: environment, input: input, timeout: timeout)
    }

    /// Stops and removes every pod and container of this store, then the store itself.
    func removeEverything() {
        _ = try? run(["pod", "rm", "--all", "--force"], timeout: 120)
        _ = try? run(["rm", "--all", "--force"], timeout: 120)
        _ = try? run(["rmi", "--all", "--force"], timeout: 120)
        for name in (try? run(["secret", "ls", "--format", "{{.Name}}"]).stdout.split(separator: "\n")) ?? [] {
            _ = try? run(["secret", "rm", String(name)])
        }
        try? FileManager.default.removeItem(at: root)
    }
}
