import Foundation
import GustTesting

/// A real podman for one test, with everything of its own: a containers.conf (cgroupfs, runc, no
/// default ulimits: what this machine's podman needs, never /etc's), a storage root and a run root
/// in the test's scratch directory. `removeEverything()` removes every container by name and every
/// image (bounded waits), so a test leaves nothing behind.
final class Podman: @unchecked Sendable {
    let directory: URL
    private var containers: [String] = []

    init(in scratch: URL) throws {
        directory = scratch.appendingPathComponent("podman")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try """
            [engine]
            cgroup_manager = "cgroupfs"
            runtime = "runc"
            events_logger = "file"
            [containers]
            default_ulimits = []
            """.write(to: directory.appendingPathComponent("containers.conf"), atomically: true, encoding: .utf8)
    }

    /// `podman ARGS` against this storage, with a bounded wait.
    @discardableResult
    func run(_ arguments: [String], input: String? = nil, timeout: TimeInterval = 300) throws -> CommandResult {
        try Command.run(
            "podman",
            ["--root", directory.appendingPathComponent("root").path, "--runroot", directory.appendingPathComponent("run").path,
             "--tmpdir", directory.appendingPathComponent("tmp").path] + arguments,
            environment: ["CONTAINERS_CONF": directory.appendingPathComponent("containers.conf").path],
            input: input, timeout: timeout
        )
    }

    /// Loads an oci-archive; returns the names podman printed.
    func load(_ archive: URL) throws -> CommandResult {
        try run(["load", "-i", archive.path])
    }

    /// Starts `image` detached as a container named for this test, its port 8080 on a free loopback port.
    func start(_ image: String, name: String, options: [String] = [], arguments: [String] = []) throws -> (name: String, port: Int) {
        let port = try LoopbackPort.free()
        containers.append(name)
        let result = try run(["run", "-d", "--name", name, "-p", "127.0.0.1:\(port):8080"] + options + [image] + arguments)
        guard result.status == 0 else { throw FixtureFailure("podman run failed: \(result.output)") }
        return (name, port)
    }

    /// Waits (at most `seconds`) for `GET /_/health` to answer 200 on `port`.
    func waitHealthy(_ name: String, port: Int, seconds: Int = 60) throws {
        for _ in 0..<(seconds * 10) {
            if let answer = try? HTTPClient.request(port: port, "GET", "/_/health"), answer.status == 200 { return }
            usleep(100_000)
        }
        throw FixtureFailure("\(name) did not become healthy within \(seconds) s: \(try run(["logs", name]).output)")
    }

    func logs(_ name: String) -> String { (try? run(["logs", name]).output) ?? "" }

    /// Every container this test started, by name, then every image, then the storage itself.
    func removeEverything() {
        _ = try? run(["pod", "rm", "--all", "--force"], timeout: 120)
        for name in containers { _ = try? run(["rm", "-f", "-t", "2", name], timeout: 60) }
        _ = try? run(["rmi", "-a", "-f"], timeout: 120)
        _ = try? run(["system", "reset", "-f"], timeout: 120)
        try? FileManager.default.removeItem(at: directory)
    }

}
