public import Foundation

/// A command left running while a test goes on (`gust logs -f`), its output
/// in a file the test reads as it grows; stopped by PID when done.
public final class BackgroundCommand: @unchecked Sendable {
    private let process = Process()
    private let outputFile: URL

    /// `environment` is added to this process's.
    public init(_ executable: String, _ arguments: [String], outputIn directory: URL, environment: [String: String] = [:]) throws {
        outputFile = directory.appendingPathComponent("background-\(UUID().uuidString.prefix(6)).out")
        _ = FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        let handle = try FileHandle(forWritingTo: outputFile)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    deinit { stop() }

    public var pid: Int32 { process.processIdentifier }
    public var output: String { (try? String(contentsOf: outputFile, encoding: .utf8)) ?? "" }

    /// Polls the output every 50 ms until `condition` holds or `seconds` pass.
    public func waitForOutput(upTo seconds: Double, _ condition: (String) -> Bool) -> Bool {
        for _ in 0..<Int(seconds * 20) {
            if condition(output) { return true }
            usleep(50_000)
        }
        return condition(output)
    }

    /// SIGTERM, SIGKILL after 5 s, then reaped.
    public func stop() {
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        for _ in 0..<100 where process.isRunning { usleep(50_000) }
        if process.isRunning { kill(pid, SIGKILL) }
        GustdProcess.reap(pid)
    }
}
