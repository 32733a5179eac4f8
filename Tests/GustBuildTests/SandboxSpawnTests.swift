import Foundation
import GustTesting
import Testing

@testable import GustBuild

/// The spawn of the sandbox's helpers (bwrap's trial, the reclaim sandbox, newuidmap and
/// newgidmap): a real /bin/sh, a real descriptor left open without close-on-exec.
struct SandboxSpawnTests {
    /// What the child's shell says of descriptor `fd` in itself, written to a file it opens.
    func inherits(_ fd: Int32, placing place: (inout posix_spawn_file_actions_t) -> Void = { _ in }, stdin: String = "") throws -> String {
        let out = ScratchDirectory.current.appendingPathComponent("said").path
        let script = "read line; test -e /proc/$$/fd/\(fd) && echo \"open $line\" > '\(out)' || echo \"closed $line\" > '\(out)'"
        let spawned = SandboxSpawn.spawn(["/bin/sh", "-c", script], actions: place)
        guard case .success(let child) = spawned else { throw SandboxError("the spawn failed") }
        #expect(SandboxSpawn.wait(child) == 0)
        return try String(contentsOfFile: out, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test(.scratchDirectory) func aDescriptorOfGustdsWithoutCloseOnExecNeverReachesTheHelper() throws {
        let leaky = open("/dev/null", O_RDONLY)  // no O_CLOEXEC: as a library's descriptor may be
        try #require(leaky >= 3)
        defer { close(leaky) }
        #expect(try inherits(leaky) == "closed")
    }

    @Test(.scratchDirectory) func whatTheActionsPlaceOnZeroToTwoStillArrives() throws {
        var pipe: [Int32] = [-1, -1]
        try #require(Glibc.pipe(&pipe) == 0)  // no close-on-exec: the read end is dup2'ed onto 0
        let line = "from gustd\n"
        _ = line.withCString { write(pipe[1], $0, strlen($0)) }
        close(pipe[1])
        defer { close(pipe[0]) }
        let read = pipe[0]
        #expect(try inherits(read, placing: { posix_spawn_file_actions_adddup2(&$0, read, 0) }) == "closed from gustd")
    }
}
