public import Foundation

/// A command left running while a test goes on (`gust logs -f`), its output
/// in a file the test reads as it grows; stopped by PID when done.
public final class BackgroundCommand: Sendable {
    private let process: ChildProcess
    private let outputFile: URL

    /// `environment` is added to this process's.
    public init(_ executable: String, _ arguments: [String], outputIn directory: URL, environment: [String: String] = [:]) throws {
        outputFile = directory.appendingPathComponent("background-\(UUID().uuidString.prefix(6)).out")
        let output = open(outputFile.path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw ChildProcessFailure(command: executable, step: "open \(outputFile.path)", error: errno) }
        defer { close(output) }
        process = try ChildProcess(
            executable, arguments, environment: environment.isEmpty ? nil : ProcessInfo.processInfo.environment.merging(environment) { $1 },
            standardOutput: output, standardError: output
        )
    }

    deinit { stop() }

    public var pid: Int32 { process.pid }
    public var output: String { (try? String(contentsOf: outputFile, encoding: .utf8)) ?? "" }

    /// Polls the output every 50 ms until `condition` holds or `seconds` pass.
    public func waitForOutput(upTo seconds: Double, _ condition: (String) -> Bool) -> Bool {
        for _ in 0..<Int(seconds * 20) {
            if condition(output) { return true }
            usleep(50_000)
        }
        return condition(output)
    }

    /// SIGTERM, SIGKILL after 5 s, then reaped (a bounded wait).
    public func stop() {
        process.stop(within: 5)
    }
}
