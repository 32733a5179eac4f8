import Foundation
import Testing

@testable import GustBuild

/// What `Sandbox.firstChild` says of a bubblewrap that ended before its sandbox started: a real
/// process, left a zombie (as gustd's spawned bwrap is until its waiter reaps it).
struct SandboxFirstChildTests {
    /// Spawns `argv`, lets `end` end it, and waits (bounded) until it is a zombie.
    func zombie(_ argv: [String], _ end: (pid_t) -> Void = { _ in }) throws -> pid_t {
        guard case .success(let pid) = SandboxSpawn.spawn(argv) else { throw SandboxError("the spawn failed") }
        end(pid)
        for _ in 0..<400 {
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            if let close = stat.lastIndex(of: ")"), stat[stat.index(after: close)...].split(separator: " ").first == "Z" { return pid }
            usleep(5_000)
        }
        kill(pid, SIGKILL)  // stopped by its PID and reaped, whatever the test's outcome
        _ = SandboxSpawn.wait(pid)
        throw SandboxError("\(pid) did not end within 2 s")
    }

    /// A bwrap killed (by gustd's stop, the OOM killer) wrote nothing: the error does not send the
    /// reader to output above that is not there, and says how it ended.
    @Test func aKilledBubblewrapIsSaidToBeKilledNotToHaveWrittenAnything() throws {
        let pid = try zombie(["/bin/sleep", "30"]) { kill($0, SIGKILL) }
        defer { _ = SandboxSpawn.wait(pid) }
        let error = #expect(throws: SandboxError.self) { try Sandbox.firstChild(of: pid) }
        let text = error?.description ?? ""
        #expect(text.contains("was killed by signal 9 before its sandbox started"), "\(text)")
        #expect(!text.contains("above"), "\(text)")
    }

    /// One that exited on its own wrote why (bwrap always does): the error points at it.
    @Test func anExitedBubblewrapPointsAtItsOutput() throws {
        let pid = try zombie(["/bin/sh", "-c", "exit 3"])
        defer { _ = SandboxSpawn.wait(pid) }
        let error = #expect(throws: SandboxError.self) { try Sandbox.firstChild(of: pid) }
        let text = error?.description ?? ""
        #expect(text.contains("exited with code 3 before its sandbox started; its output is above"), "\(text)")
    }
}
