public import Foundation
public import GustCore

/// A real `gustd` for one test: on a free loopback port, its log in the
/// scratch directory, stopped by PID (SIGTERM, then SIGKILL) when the test is done.
public final class GustdProcess: @unchecked Sendable {
    public let home: GustHome
    public let log: URL
    public private(set) var port: Int = 0
    private var process: ChildProcess?
    private let arguments: [String]
    /// The Unix user gustd runs as (through setpriv), if not this process's.
    private let user: String?
    /// gustd's cgroup root (`--cgroup-root`), unique to this gustd and removed when it stops.
    public let cgroupRoot: String
    private let executable: String
    private let environment: [String: String]

    /// `executable`: the built gustd, unless a test runs an installed one.
    /// - Parameter environment: variables set (or replaced) in gustd's environment, which is otherwise this process's.
    public init(
        home: GustHome, arguments: [String] = [], user: String? = nil, executable: String = GustBinaries.gustd, environment: [String: String] = [:]
    ) throws {
        self.home = home
        self.user = user
        self.environment = environment
        if let index = arguments.firstIndex(of: "--cgroup-root"), index + 1 < arguments.count {
            cgroupRoot = arguments[index + 1]
            self.arguments = arguments
        } else {
            cgroupRoot = "gust-test-" + UUID().uuidString.prefix(8).lowercased()
            self.arguments = arguments + ["--cgroup-root", cgroupRoot]
        }
        self.executable = executable
        log = home.root.deletingLastPathComponent().appendingPathComponent("gustd-\(UUID().uuidString.prefix(4)).log")
        try start()
    }

    deinit { stop() }

    /// Starts gustd and waits (bounded) until it has written the address it serves.
    public func start() throws {
        let addressFile = home.run.appendingPathComponent("gustd.http")
        try? FileManager.default.removeItem(at: addressFile)
        // A fresh log each start (a successor gustd may still write to the last one's file).
        try? FileManager.default.removeItem(at: log)
        let output = open(log.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw ChildProcessFailure(command: executable, step: "open \(log.path)", error: errno) }
        defer { close(output) }
        let gustd = ["--home", home.path, "--http", "127.0.0.1:0"] + arguments
        let process = if let user {
            try ChildProcess(
                "/usr/bin/setpriv", ["--reuid=\(user)", "--regid=\(user)", "--init-groups", "--", executable] + gustd,
                environment: ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/", "LANG": "C.UTF-8"].merging(environment) { $1 },
                standardOutput: output, standardError: output
            )
        } else {
            try ChildProcess(
                executable, gustd, environment: environment.isEmpty ? nil : ProcessInfo.processInfo.environment.merging(environment) { $1 },
                standardOutput: output, standardError: output
            )
        }
        self.process = process
        for _ in 0..<1200 {  // 60 s: a loaded CI machine can stall for 10 s and more
            if let text = try? String(contentsOf: addressFile, encoding: .utf8),
                let port = Int(text.split(separator: ":").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "")
            {
                self.port = port
                return
            }
            guard process.isRunning else { break }
            usleep(50_000)
        }
        stop()
        throw GustdFailure(log: logText)
    }

    public var pid: Int32 { process?.pid ?? 0 }
    public var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// SIGTERM and a bounded wait; SIGKILL if it does not stop. Then any
    /// instance a killed gustd left is stopped by its recorded PID.
    public func stop() {
        stopSuccessor()
        process?.stop(within: 10)
        process = nil
        Self.stopInstances(of: home)
        Self.removeCgroups(named: cgroupRoot)
    }

    /// The instance's directory under each cgroup hierarchy it uses (`memory`, `pids`, `cpu`).
    public func cgroupDirectories(app: String) -> [String: [String]] {
        var found: [String: [String]] = [:]
        for controller in ["memory", "pids", "cpu", "unified"] {
            let directory = "/sys/fs/cgroup/\(controller)/\(cgroupRoot)/\(app)"
            let children = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            found[controller] = children.map { directory + "/" + $0 }.filter { path in
                var isDirectory: ObjCBool = false
                return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
            }
        }
        return found
    }

    /// Removes gustd's cgroup tree (a test's unique root), deepest first, killing what is left in it,
    /// and gustd's own cgroup beside it (`--cpu-weight`: the tree's name and a `d`, `GustdCgroup`).
    static func removeCgroups(named name: String) {
        for controller in ["memory", "pids", "cpu", "unified"] {
            for root in ["/sys/fs/cgroup/\(controller)/\(name)", "/sys/fs/cgroup/\(controller)/\(name)d"] {
                removeCgroupTree(root)
            }
        }
    }

    private static func removeCgroupTree(_ root: String) {
        guard FileManager.default.fileExists(atPath: root) else { return }
        var directories = [root]
        var index = 0
        while index < directories.count {
            let children = (try? FileManager.default.contentsOfDirectory(atPath: directories[index])) ?? []
            for child in children where !child.contains(".") {
                var isDirectory: ObjCBool = false
                let path = directories[index] + "/" + child
                if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue { directories.append(path) }
            }
            index += 1
        }
        for directory in directories.reversed() {
            let pids = (try? String(contentsOfFile: directory + "/cgroup.procs", encoding: .utf8))?.split(separator: "\n").compactMap { Int32($0) } ?? []
            pids.forEach { kill($0, SIGKILL) }
            for _ in 0..<100 where rmdir(directory) != 0 && errno == EBUSY { usleep(20_000) }
        }
    }

    /// SIGTERM as a service manager sends it; waits up to `seconds` for gustd to
    /// exit and returns its exit status (128 + N for signal N), nil if it was still running (then it is killed).
    public func terminate(within seconds: Double) -> Int32? {
        guard let process, process.isRunning else { return nil }
        process.send(SIGTERM)
        guard let ended = process.wait(upTo: seconds) else {
            stop()
            return nil
        }
        self.process = nil
        return ended.status
    }

    /// The gustd this one handed over to (`kill -USR2`), if any: not this process's child,
    /// so stopped by its PID (`run/gustd.pid`) when the test is done, before this one's cleanup.
    public private(set) var successor: Int32?

    /// Waits up to `seconds` for gustd to exit by itself (after a handover, say) and returns
    /// its exit status, nil if it is still running.
    public func waitForExit(within seconds: Double) -> Int32? {
        guard let ended = process?.wait(upTo: seconds) else { return nil }
        self.process = nil
        return ended.status
    }

    /// The PID gustd's home says is serving (`run/gustd.pid`), remembered as the successor to stop.
    /// Waits up to `seconds`: the successor writes it only once it holds the home's lock, after this
    /// one has exited (and removed its own), so right after the exit there may be none yet.
    public func adoptSuccessor(within seconds: Double = 30) -> Int32? {
        for _ in 0...Int(seconds * 20) {
            let text = try? String(contentsOf: home.run.appendingPathComponent("gustd.pid"), encoding: .utf8)
            if let pid = text.flatMap({ Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }), pid != self.pid {
                successor = pid
                return pid
            }
            usleep(50_000)
        }
        return nil
    }

    /// SIGTERM to the successor and a bounded wait (it is reaped by whoever adopted it), then SIGKILL.
    public func stopSuccessor() {
        guard let pid = successor else { return }
        if Self.isAlive(pid) { kill(pid, SIGTERM) }
        for _ in 0..<400 where Self.isAlive(pid) { usleep(50_000) }  // 20 s
        if Self.isAlive(pid) { kill(pid, SIGKILL) }
        successor = nil
    }

    /// SIGKILL: what a crash or the OOM killer does. Instances are left running.
    public func kill9() {
        guard let process else { return }
        process.send(SIGKILL)
        _ = process.wait(upTo: 10)
        self.process = nil
    }

    /// The PIDs of instance processes gustd recorded as running (zygotes not among them).
    public static func recordedInstancePIDs(of home: GustHome) -> [Int32] {
        recordedPIDs(of: home).filter { $0.kind == nil }.map(\.pid)
    }

    /// The PIDs of the zygotes gustd recorded as running (Python releases fork their instances from them).
    public static func recordedZygotePIDs(of home: GustHome) -> [Int32] {
        recordedPIDs(of: home).filter { $0.kind == "zygote" }.map(\.pid)
    }

    private static func recordedPIDs(of home: GustHome) -> [(pid: Int32, kind: String?)] {
        let directory = home.run.appendingPathComponent("instances")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return files.filter { $0.hasSuffix(".json") }.compactMap { name in
            guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent(name).path),
                let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let pid = object["pid"] as? Int
            else { return nil }
            return (Int32(pid), object["kind"] as? String)
        }
    }

    /// Whether a process with this PID exists and is not a zombie.
    public static func isAlive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        return stat[stat.index(after: close)...].split(separator: " ").first != "Z"
    }

    /// What `stop()` does after gustd itself has gone, for a gustd a test started some other way:
    /// every recorded instance killed, the cgroup tree removed.
    public static func cleanUp(home: GustHome, cgroupRoot: String) {
        stopInstances(of: home)
        removeCgroups(named: cgroupRoot)
    }

    static func stopInstances(of home: GustHome) {
        for pid in recordedPIDs(of: home).map(\.pid) where pid > 1 && isAlive(pid) {
            kill(-pid, SIGKILL)
        }
    }
}

public struct GustdFailure: Error, CustomStringConvertible {
    public var log: String
    public var description: String { "gustd did not start:\n\(log)" }
}
