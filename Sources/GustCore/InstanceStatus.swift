import Foundation

/// One instance as `gust ps` shows it: the admin API's `GET /v1/apps/APP/instances`
/// answers a list of these, so gustd and the CLI share the shape.
public struct InstanceStatus: Codable, Sendable, Equatable {
    /// Nil while the instance is starting (it has no process id yet).
    public var id: String?
    public var release: Int
    public var pid: Int?
    /// `starting`, `idle`, `busy` or `draining`; `zygote` for a zygote.
    public var state: String
    /// Calls it has answered.
    public var served: Int
    public var inFlight: Int
    /// Proportional set size: its share of memory, shared pages divided among their users; under
    /// the sandbox its cgroup's memory (the RSS of the app's processes in it).
    public var memoryBytes: Int?
    public var uptimeSeconds: Double?
    /// "zygote" for a release's zygote (the process its Python instances are forked from, state
    /// `zygote`); nil for an instance.
    public var kind: String?

    public init(
        id: String?, release: Int, pid: Int?, state: String, served: Int, inFlight: Int, memoryBytes: Int?, uptimeSeconds: Double?,
        kind: String? = nil
    ) {
        self.kind = kind
        self.id = id
        self.release = release
        self.pid = pid
        self.state = state
        self.served = served
        self.inFlight = inFlight
        self.memoryBytes = memoryBytes
        self.uptimeSeconds = uptimeSeconds
    }

    /// The PSS of a process from `/proc/PID/smaps_rollup`, else its RSS; nil if it is gone.
    public static func memory(of pid: Int32) -> Int? {
        for (file, field) in [("smaps_rollup", "Pss:"), ("status", "VmRSS:")] {
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/\(file)", encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") where line.hasPrefix(field) {
                let kilobytes = line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
                if let kilobytes { return kilobytes * 1024 }
            }
        }
        return nil
    }
}

extension AdminClient {
    /// The instances gustd runs for `app`, live release first.
    public func instances(of app: AppName) throws -> [InstanceStatus] {
        var lines: [String] = []
        try exchange("GET", "/v1/apps/\(app)/instances", body: Data()) { lines.append($0) }
        do {
            return try JSONDecoder().decode([InstanceStatus].self, from: Data(lines.joined(separator: "\n").utf8))
        } catch {
            throw GustError("gustd answered something `gust ps` cannot read: \(error)", code: 502)
        }
    }
}
