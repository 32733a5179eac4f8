public import Foundation

/// Limits of one build. Read from the environment so that an admin (or a
/// test) can change them without touching the hooks installed in repositories.
public struct BuildSettings: Sendable {
    /// The whole build must finish within this; default 15 minutes.
    public var timeout: Duration
    /// After this much silence, the pusher is told that the build is alive.
    public var heartbeat: Duration
    /// Bytes a build may print; the line past them stops it (`BuildOutputBudget`).
    public var outputLimit = 8 << 20
    /// The sandbox a build's scripts run in: gustd's (`gustd --sandbox`); nil: none (`gust dev`).
    public var sandbox: Sandbox?

    public init(timeout: Duration = .seconds(15 * 60), heartbeat: Duration = .seconds(20)) {
        self.timeout = timeout
        self.heartbeat = heartbeat
    }

    /// `GUST_BUILD_TIMEOUT` and `GUST_BUILD_HEARTBEAT`, in seconds; `GUST_BUILD_OUTPUT_LIMIT`, in bytes.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> BuildSettings {
        var settings = BuildSettings()
        if let seconds = environment["GUST_BUILD_TIMEOUT"].flatMap(Double.init), seconds > 0 {
            settings.timeout = .milliseconds(Int64(seconds * 1000))
        }
        if let seconds = environment["GUST_BUILD_HEARTBEAT"].flatMap(Double.init), seconds > 0 {
            settings.heartbeat = .milliseconds(Int64(seconds * 1000))
        }
        if let bytes = environment["GUST_BUILD_OUTPUT_LIMIT"].flatMap(Int.init), bytes > 0 {
            settings.outputLimit = bytes
        }
        return settings
    }
}
