public import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Subprocess
import Synchronization

#if canImport(System)
import System
#else
import SystemPackage
#endif

/// Runs one buildpack script, streaming its merged stdout and stderr line by
/// line as it runs, within a time limit.
///
/// The script gets a session of its own so that, on timeout, the whole process
/// group (pip, npm and whatever else it started) is stopped, not just the shell.
/// So does a cancelled task's (swift-subprocess runs the same teardown). A terminal's
/// Ctrl-C never reaches the command itself: its caller stops it (`StackBuildInterruption`).
/// It inherits no descriptor of the hook's beyond stdin, stdout and stderr:
/// swift-subprocess closes every one from 3 up in the child on Linux
/// (`posix_spawn_file_actions_addclosefrom_np`, or `close_range` on its fork
/// path), which HardeningProcessTests checks from inside a compile step.
public struct StreamingCommand: Sendable {
    public enum Outcome: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)
        case timedOut
        /// `accepting` refused a line: the command was stopped there.
        case stopped
    }

    public var executable: URL
    public var arguments: [String]
    public var environment: [String: String]
    public var workingDirectory: URL
    /// The command's stdin (closed once it is spawned); /dev/null when nil.
    public var standardInput: Int32?
    /// Called with the pid once the command is spawned (a sandbox maps its ids and lets it go on here);
    /// if it throws, the command is stopped and the error thrown.
    public var started: (@Sendable (Int32) async throws -> Void)?
    /// How long a command stopped on timeout or cancellation has after SIGTERM before SIGKILL: one
    /// that cleans up after itself (mmdebstrap unmounts what it mounted in its root) needs longer.
    public var gracePeriod: Duration = .seconds(2)

    public init(
        executable: URL, arguments: [String], environment: [String: String], workingDirectory: URL,
        standardInput: Int32? = nil, started: (@Sendable (Int32) async throws -> Void)? = nil
    ) {
        self.standardInput = standardInput
        self.started = started
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
    }

    /// - Parameters:
    ///   - deadline: when the command is stopped and `.timedOut` returned.
    ///   - onLine: called for each line, from a background task.
    public func run(until deadline: ContinuousClock.Instant, onLine: @escaping @Sendable (String) -> Void) async throws -> Outcome {
        try await run(until: deadline, accepting: { line in
            onLine(line)
            return true
        })
    }

    /// The same, stopping the command (its process group, SIGKILL) at the first line `accepting` refuses.
    public func run(until deadline: ContinuousClock.Instant, accepting: @escaping @Sendable (String) -> Bool) async throws -> Outcome {
        var options = PlatformOptions()
        options.createSession = true
        let teardown: [TeardownStep] = [
            .gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: gracePeriod),
            .send(signal: .kill, toProcessGroup: true, allowedDurationToNextStep: .seconds(1)),
        ]
        options.teardownSequence = teardown
        let timedOut = Flag()
        let refused = Flag()
        let configuration = Configuration(
            executable: .path(FilePath(executable.path)),
            arguments: Arguments(arguments),
            environment: .custom(Dictionary(uniqueKeysWithValues: environment.compactMap { key, value in
                Environment.Key(rawValue: key).map { ($0, value) }
            })),
            workingDirectory: FilePath(workingDirectory.path),
            platformOptions: options
        )
        let input = standardInput ?? open("/dev/null", O_RDONLY | O_CLOEXEC)
        let started = self.started
        let result = try await Subprocess.run(
            configuration, input: .fileDescriptor(FileDescriptor(rawValue: input), closeAfterSpawningProcess: true),
            output: .sequence, error: .combinedWithOutput
        ) { execution in
            if let started {
                do { try await started(execution.processIdentifier.value) } catch {
                    await execution.teardown(using: [.send(signal: .kill, toProcessGroup: true, allowedDurationToNextStep: .seconds(1))])
                    throw error
                }
            }
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    // Lines end at a line feed only, as the buildpacks' `sed` indent reads them: a carriage
                    // return or U+2028 inside what pip prints stays inside its indented line.
                    let lines = execution.standardOutput.strings(separatedBy: .unicodeScalarSequence(["\n"]), bufferingPolicy: .maxLineLength(64 * 1024))
                    for try await line in lines {
                        guard accepting(String(line.trimmingSuffix(while: { $0 == "\n" || $0 == "\r" }))) else {
                            refused.set()
                            await execution.teardown(using: [.send(signal: .kill, toProcessGroup: true, allowedDurationToNextStep: .seconds(1))])
                            return
                        }
                    }
                }
                group.addTask {
                    try await Task.sleep(until: deadline, clock: .continuous)
                    timedOut.set()
                    await execution.teardown(using: teardown)
                }
                // The reader ends when the process (and every holder of its pipe) is gone.
                try await group.next()
                group.cancelAll()
            }
        }
        if timedOut.isSet { return .timedOut }
        if refused.isSet { return .stopped }
        switch result.terminationStatus {
        case .exited(let code): return .exited(code)
        case .signaled(let signal): return .signalled(signal)
        }
    }
}

extension StringProtocol {
    func trimmingSuffix(while predicate: (Character) -> Bool) -> Substring {
        var slice = Substring(self)
        while let last = slice.last, predicate(last) { slice.removeLast() }
        return slice
    }
}

/// A one-way switch shared between the tasks of one run.
private final class Flag: Sendable {
    private let value = Atomic(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}
