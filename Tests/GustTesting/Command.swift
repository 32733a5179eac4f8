public import Foundation

/// The outcome of a finished child process.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var output: String { stdout + stderr }
}

/// Runs real programs (git, the built gust binaries) for tests, with a bounded wait.
public enum Command {
    /// Runs `executable` with `arguments`; `environment` is added to this process's.
    @discardableResult
    public static func run(
        _ executable: String, _ arguments: [String], in directory: URL? = nil,
        environment: [String: String] = [:], input: String? = nil, timeout: TimeInterval = 300
    ) throws -> CommandResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : try which(executable))
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe(), inPipe = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = inPipe
        try process.run()
        if let input { inPipe.fileHandleForWriting.write(Data(input.utf8)) }
        try? inPipe.fileHandleForWriting.close()
        // Drain both pipes while the child runs, so a chatty child never blocks on a full pipe.
        let stdout = Drain(out.fileHandleForReading)
        let stderr = Drain(err.fileHandleForReading)
        let deadline = Date().addingTimeInterval(timeout)
        guard let status = waitForExit(process, until: deadline) else {
            kill(process.processIdentifier, SIGKILL)
            _ = waitForExit(process, until: Date().addingTimeInterval(10))
            throw CommandTimeout(command: ([executable] + arguments).joined(separator: " "), seconds: timeout)
        }
        return CommandResult(status: status, stdout: stdout.text(), stderr: stderr.text())
    }

    /// The exit status (128 + N for signal N), or nil at the deadline. Not
    /// `Process.waitUntilExit()` alone: with many children exiting at once
    /// (tests run in parallel) Foundation's SIGCHLD monitor can miss one, which
    /// then stays a zombie and that wait never returns. So the child is reaped
    /// here, unless Foundation got to it first.
    public static func waitForExit(_ process: Process, until deadline: Date) -> Int32? {
        let pid = process.processIdentifier
        while Date() < deadline {
            var status: Int32 = 0
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid {
                let signal = status & 0x7f
                return signal == 0 ? (status >> 8) & 0xff : 128 + signal
            }
            if reaped == -1 && errno == ECHILD {  // Foundation reaped it: its status is being set
                while process.isRunning && Date() < deadline { usleep(1_000) }
                return process.isRunning ? nil : process.terminationStatus
            }
            usleep(reaped == 0 ? 10_000 : 1_000)
        }
        return nil
    }

    public static func which(_ name: String) throws -> String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw CommandTimeout(command: "which \(name): not on PATH", seconds: 0)
    }
}

public struct CommandTimeout: Error, CustomStringConvertible {
    public var command: String
    public var seconds: TimeInterval
    public var description: String { "\(command) did not finish within \(Int(seconds)) s" }
}

/// Reads a pipe to its end on a background thread.
final class Drain: @unchecked Sendable {
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            data = handle.readDataToEndOfFile()
            done.signal()
        }
    }

    func text() -> String {
        done.wait()
        return String(decoding: data, as: UTF8.self)
    }
}
