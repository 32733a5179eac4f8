import Foundation
import GustCore
import Synchronization

/// The last-resort bounds of a build's compile step where gustd has no cgroup it may use
/// (`LimitMechanism.rlimits`), set by `prlimit` right before `bin/compile` runs (inside the
/// sandbox, as the app's uid: only lowering, which needs no privilege):
///
/// - its address space (RLIMIT_AS) at twice the build's memory limit (at least 2 GB, from
///   `Build.buildFloor`'s 1 GB): address space is not memory, and runtimes reserve far more of
///   it than they use (glibc's arena per thread, V8's code range and heap reservations: `npm
///   install` of a small app failed at 1 GB in the sandbox, and needs some 768 MB on the host);
/// - its processes and threads (RLIMIT_NPROC) at the build's pids limit, only where the app
///   has a uid of its own: the kernel counts them per uid in the sandbox's user namespace, so
///   the bound is the build's own, not gustd's.
///
/// The kernel counts nothing when such a limit is met (an allocation or a fork just fails), so the
/// step's output tells: `Signs` notes the lines that say so, and a step that then failed names
/// the limit (`failure`).
struct BuildRlimits: Equatable, Sendable {
    /// The build's memory limit, which the address space bound stands for.
    var memory: Int?
    var processes: Int?

    /// RLIMIT_AS: twice `memory`.
    var addressSpace: Int? { memory.map { $0 * Self.addressSpacePerByte } }
    static let addressSpacePerByte = 2

    static let prlimit = "/usr/bin/prlimit"

    /// `executable` with `arguments`, started by `prlimit` with these bounds.
    func command(_ executable: String, _ arguments: [String]) -> (executable: String, arguments: [String]) {
        var bounds: [String] = []
        if let addressSpace { bounds.append("--as=\(addressSpace)") }
        if let processes { bounds.append("--nproc=\(processes)") }
        guard !bounds.isEmpty else { return (executable, arguments) }
        return (Self.prlimit, bounds + ["--", executable] + arguments)
    }

    /// Lines of a step's output that show it met a bound: an allocation or a fork refused.
    final class Signs: Sendable {
        private let memory = Atomic(false)
        private let forks = Atomic(false)

        init() {}

        func note(_ line: String) {
            let lowered = line.lowercased()
            if Self.memoryMarks.contains(where: lowered.contains) { memory.store(true, ordering: .relaxed) }
            if Self.forkMarks.contains(where: lowered.contains) { forks.store(true, ordering: .relaxed) }
        }

        var sawMemoryRefused: Bool { memory.load(ordering: .relaxed) }
        var sawForkRefused: Bool { forks.load(ordering: .relaxed) }

        /// Python's MemoryError, ENOMEM's text, Node's and C++'s words for a failed allocation.
        static let memoryMarks = ["memoryerror", "cannot allocate memory", "out of memory", "bad_alloc"]
        /// EAGAIN's text (Python's BlockingIOError from fork, Node's spawn), and the shells' own.
        static let forkMarks = ["resource temporarily unavailable", "cannot fork", "fork: retry"]
    }

    /// The error that names the bound a failed step met, if its output shows it met one.
    func failure(app: AppName, _ outcome: StreamingCommand.Outcome, _ signs: Signs) -> GustError? {
        guard outcome != .exited(0), outcome != .timedOut, outcome != .stopped else { return nil }
        if let memory, let addressSpace, signs.sawMemoryRefused {
            return GustError(
                "The build ran out of memory: an allocation failed at its address-space limit (\(LimitSize.spoken(addressSpace)), for its \(LimitSize.spoken(memory)) memory limit: gustd has no cgroup here).",
                hint: "Use less memory while building, or ask an admin to raise it: gust limits \(app) --memory SIZE"
            )
        }
        if let processes, signs.sawForkRefused {
            return GustError(
                "The build failed after reaching its process limit (\(processes) processes and threads): a fork was refused.",
                hint: "Start fewer processes while building, or ask an admin to raise it: gust limits \(app) --pids N"
            )
        }
        return nil
    }
}
