import Foundation
import GustTesting
import Testing

/// GustTesting's way of running programs (`ChildProcess`, `Command`, `BackgroundCommand`), which
/// every end-to-end test stands on; here because the unit suites run on every change.
@Suite(.timeLimit(.minutes(2)))
struct ChildProcessTests {
    @Test func aChildWritingMuchToBothOutputsWhileItsInputIsLargeFinishes() throws {
        // 1 MB to stderr before any to stdout, then 1 MB to stdout, then its 1 MB of input counted:
        // each pipe fills many times over while the others wait.
        let script = "head -c 1000000 /dev/zero | tr '\\0' e >&2; head -c 1000000 /dev/zero | tr '\\0' o; wc -c >&2"
        let result = try Command.run("/bin/sh", ["-c", script], input: String(repeating: "i", count: 1_000_000), timeout: 100)
        #expect(result.status == 0)
        #expect(result.stdout == String(repeating: "o", count: 1_000_000))
        #expect(result.stderr == String(repeating: "e", count: 1_000_000) + "1000000\n")
    }

    @Test func theChildGetsNoDescriptorOfTheTestProcess() throws {
        // Open without close-on-exec, as a careless library would.
        let leaky = open("/dev/null", O_RDONLY)
        defer { close(leaky) }
        #expect(leaky > 2)
        let result = try Command.run("/bin/sh", ["-c", "ls /proc/$$/fd"])
        #expect(result.stdout.split(separator: "\n") == ["0", "1", "2"], "\(result.output)")
    }

    @Test(.scratchDirectory) func environmentDirectoryAndExitStatusReachTheCaller() throws {
        let result = try Command.run(
            "sh", ["-c", "pwd; echo \"$GUST_CHILD_TEST\"; exit 3"], in: ScratchDirectory.current, environment: ["GUST_CHILD_TEST": "set"]
        )
        #expect(result.status == 3)
        #expect(result.stdout == ScratchDirectory.current.resolvingSymlinksInPath().path + "\nset\n", "\(result.output)")
        #expect(try Command.run("/bin/sh", ["-c", "kill -TERM $$"]).status == 128 + SIGTERM)
    }

    @Test(.scratchDirectory) func aSignalledChildSaysWhichSignalAndAStoppedOneIsReaped() throws {
        let sleeper = try ChildProcess("sleep", ["300"])
        #expect(sleeper.isRunning)
        sleeper.send(SIGKILL)
        #expect(sleeper.wait(upTo: 60) == .signalled(SIGKILL))
        #expect(!FileManager.default.fileExists(atPath: "/proc/\(sleeper.pid)"), "reaped, no zombie left")

        // One that ignores SIGTERM is killed after the grace period.
        let ready = ScratchDirectory.current.appendingPathComponent("ready")
        let stubborn = try ChildProcess("/bin/sh", ["-c", "trap '' TERM; touch '\(ready.path)'; while :; do sleep 1; done"])
        for _ in 0..<600 where !FileManager.default.fileExists(atPath: ready.path) { usleep(50_000) }  // 30 s
        #expect(stubborn.stop(within: 1) == .signalled(SIGKILL))
    }

    @Test func aCommandPastItsTimeoutIsKilledAndSaysSo() throws {
        #expect(throws: CommandTimeout.self) { try Command.run("sleep", ["300"], timeout: 1) }
    }

    @Test func aCommandThatCannotStartSaysWhy() throws {
        let error = #expect(throws: ChildProcessFailure.self) { try ChildProcess("/nonexistent/program", []) }
        #expect(error?.description.contains("exec failed (No such file or directory)") == true, "\(String(describing: error))")
    }
}
