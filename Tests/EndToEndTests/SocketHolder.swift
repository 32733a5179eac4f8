import Foundation
import GustCore
import GustTesting

/// What systemd does with `gustd.socket`, played by a small Python process: it
/// binds the listening socket, starts gustd with it as descriptor 3 (LISTEN_FDS,
/// LISTEN_PID, LISTEN_FDNAMES=http) and, when told to, restarts gustd as
/// `systemctl restart` does (SIGTERM, wait for the exit, start again) while
/// keeping the socket open throughout. Its state (port, gustd's PID, exit
/// statuses) is in a JSON file it rewrites.
final class SocketHolder {
    static let script = #"""
        import json, os, signal, socket, sys, time

        state_file, command_dir, log_path, gustd = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
        arguments = sys.argv[5:]
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(('127.0.0.1', 0))
        listener.listen(1024)
        state = {'port': listener.getsockname()[1], 'pids': [], 'exits': []}

        def save():
            with open(state_file + '.tmp', 'w') as out:
                json.dump(state, out)
            os.replace(state_file + '.tmp', state_file)

        def start():
            log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            pid = os.fork()
            if pid == 0:
                os.dup2(log, 1)
                os.dup2(log, 2)
                os.dup2(listener.fileno(), 3)
                os.set_inheritable(3, True)  # dup2 onto itself keeps close-on-exec
                environment = dict(os.environ, LISTEN_PID=str(os.getpid()), LISTEN_FDS='1', LISTEN_FDNAMES='http')
                os.execve(gustd, [gustd] + arguments, environment)
            os.close(log)
            state['pids'].append(pid)
            save()
            return pid

        def stop(pid):
            os.kill(pid, signal.SIGTERM)
            _, status = os.waitpid(pid, 0)
            state['exits'].append(os.waitstatus_to_exitcode(status))
            save()

        pid = start()
        while True:
            if os.path.exists(os.path.join(command_dir, 'restart')):
                os.unlink(os.path.join(command_dir, 'restart'))
                stop(pid)
                pid = start()
            if os.path.exists(os.path.join(command_dir, 'stop')):
                stop(pid)
                break
            time.sleep(0.02)
        """#

    struct State: Decodable {
        let port: Int
        let pids: [Int32]
        let exits: [Int32]
    }

    private let process: ChildProcess
    private let stateFile: URL
    private let commands: URL
    let log: URL

    init(gustd: String, arguments: [String], in directory: URL) throws {
        let script = directory.appendingPathComponent("holder.py")
        try Self.script.write(to: script, atomically: true, encoding: .utf8)
        stateFile = directory.appendingPathComponent("holder.json")
        commands = directory.appendingPathComponent("holder-commands")
        log = directory.appendingPathComponent("gustd-held.log")
        try FileManager.default.createDirectory(at: commands, withIntermediateDirectories: true)
        process = try ChildProcess(
            "/usr/bin/python3", [script.path, stateFile.path, commands.path, log.path, gustd] + arguments,
            standardOutput: STDOUT_FILENO, standardError: STDERR_FILENO
        )
    }

    deinit {
        if let pid = state?.pids.last, GustdProcess.isAlive(pid) { kill(pid, SIGKILL) }
        process.send(SIGKILL)
        _ = process.wait(upTo: 10)
    }

    var state: State? {
        FileManager.default.contents(atPath: stateFile.path).flatMap { try? JSONDecoder().decode(State.self, from: $0) }
    }

    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// Waits (bounded) until `done` holds of the state.
    func wait(seconds: Double, until done: (State) -> Bool) -> State? {
        for _ in 0..<Int(seconds * 20) {
            if let state, done(state) { return state }
            usleep(50_000)
        }
        return nil
    }

    func restart() { _ = FileManager.default.createFile(atPath: commands.appendingPathComponent("restart").path, contents: nil) }

    /// Stops gustd (SIGTERM) and the holder, bounded.
    func stop() {
        _ = FileManager.default.createFile(atPath: commands.appendingPathComponent("stop").path, contents: nil)
        if process.wait(upTo: 30) == nil {
            if let pid = state?.pids.last { kill(pid, SIGKILL) }
            process.send(SIGKILL)
            _ = process.wait(upTo: 10)
        }
    }
}
