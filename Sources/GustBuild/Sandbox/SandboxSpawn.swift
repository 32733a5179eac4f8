import CGustSystem
import Foundation

/// The one way the sandbox's short helpers are started (bwrap's trial, the reclaim sandbox,
/// newuidmap and newgidmap): posix_spawn with every descriptor from 3 up closed in the child.
/// gustd marks its own descriptors close-on-exec, but a pipe another thread has just made, or
/// one a library opened without O_CLOEXEC, would otherwise reach a setuid helper or a sandbox.
/// What a child needs beyond 0, 1 and 2 it opens itself (`Sandbox.command`'s shell does).
enum SandboxSpawn {
    /// Spawns `argv[0]` with `argv` and gustd's environment; `actions` places 0, 1 and 2 first.
    /// Returns the child's pid or the errno of the spawn.
    static func spawn(_ argv: [String], actions place: (inout posix_spawn_file_actions_t) -> Void = { _ in }) -> Result<pid_t, Errno> {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        place(&actions)
        let closing = gust_spawn_addclosefrom(&actions, 3)  // an error number, as posix_spawn's own
        guard closing == 0 else { return .failure(Errno(closing)) }
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var child: pid_t = 0
        let result = posix_spawn(&child, argv[0], &actions, nil, cArguments, environ)
        return result == 0 ? .success(child) : .failure(Errno(result))
    }

    /// A pipe whose two ends are close-on-exec (read, write), or nil with `errno` set.
    static func pipe() -> [Int32]? {
        var ends: [Int32] = [-1, -1]
        return gust_pipe_cloexec(&ends) == 0 ? ends : nil
    }

    /// Waits for `child` and returns its wait status.
    static func wait(_ child: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        return status
    }

    struct Errno: Error {
        var code: Int32
        init(_ code: Int32) { self.code = code }
        var words: String { String(cString: strerror(code)) }
    }
}
