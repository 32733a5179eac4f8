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
    /// Both outputs are read while it runs (`ChildPipes`); past `timeout` it is killed and `CommandTimeout` thrown.
    @discardableResult
    public static func run(
        _ executable: String, _ arguments: [String], in directory: URL? = nil,
        environment: [String: String] = [:], input: String? = nil, timeout: TimeInterval = 300
    ) throws -> CommandResult {
        let pipes = try ChildPipes(input: Data((input ?? "").utf8))
        let child: ChildProcess
        do {
            child = try ChildProcess(
                executable, arguments, environment: ProcessInfo.processInfo.environment.merging(environment) { $1 },
                directory: directory, standardInput: pipes.childInput, standardOutput: pipes.childOutput, standardError: pipes.childError
            )
        } catch {
            pipes.abandon()
            throw error
        }
        pipes.start()
        guard let termination = child.wait(upTo: timeout) else {
            child.send(SIGKILL)
            _ = child.wait(upTo: 10)
            _ = pipes.finish(within: 5)
            throw CommandTimeout(command: ([executable] + arguments).joined(separator: " "), seconds: timeout)
        }
        // The outputs end with the child, unless something it started holds them open: then what came by 30 s.
        let (stdout, stderr) = pipes.finish(within: 30)
        return CommandResult(status: termination.status, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
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
