#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GustCore
import Synchronization

/// The keys of `gust dev`'s terminal, when its standard input is one: `s` lists
/// the live release's schedules, numbered, and a digit then runs that one now
/// (as `gust dev --run NAME` does from another terminal); `r` runs the last one
/// again; `h` or `?` lists the keys. The terminal reads key by key without
/// echo while `gust dev` runs (Ctrl-C still stops it) and is put back as it was.
final class DevKeys: Sendable {
    private let saved: termios
    private let workspace: DevWorkspace
    /// The schedules last listed (a digit picks among them) and the last one run.
    private let state = Mutex<(listed: [String], last: String?)>(([], nil))

    static let help = "Keys: s lists the schedules (then 1-9 runs one now), r runs the last one again, h shows this."

    /// Nil when standard input is not a terminal (a pipe, a file, a test without a pty).
    init?(workspace: DevWorkspace) {
        guard isatty(STDIN_FILENO) == 1 else { return nil }
        var settings = termios()
        guard tcgetattr(STDIN_FILENO, &settings) == 0 else { return nil }
        saved = settings
        settings.c_lflag &= ~tcflag_t(ICANON | ECHO)
        withUnsafeMutableBytes(of: &settings.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        guard tcsetattr(STDIN_FILENO, TCSANOW, &settings) == 0 else { return nil }
        self.workspace = workspace
    }

    /// Puts the terminal back as it was.
    func restore() {
        var settings = saved
        _ = tcsetattr(STDIN_FILENO, TCSANOW, &settings)
    }

    /// Reads keys on a thread of its own until `stopped()` says so (it looks every 100 ms).
    func start(until stopped: @escaping @Sendable () -> Bool) {
        let thread = Thread { [self] in
            var descriptor = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
            var byte: UInt8 = 0
            while !stopped() {
                guard poll(&descriptor, 1, 100) > 0 else { continue }
                guard read(STDIN_FILENO, &byte, 1) == 1 else { return }  // the terminal went away
                press(byte)
            }
        }
        thread.start()
    }

    /// What a key does.
    func press(_ key: UInt8) {
        switch Character(Unicode.Scalar(key)) {
        case "s": list()
        case "r":
            guard let last = state.withLock({ $0.last }) else {
                say("       No schedule run yet: press s, then its number.")
                return
            }
            run(last)
        case "1"..."9":
            let index = Int(key - UInt8(ascii: "1"))
            let listed = state.withLock { $0.listed }
            guard index < listed.count else {
                say(listed.isEmpty ? "       Press s first to list the schedules." : "       No schedule \(index + 1): press s to list them.")
                return
            }
            run(listed[index])
        case "h", "?": say("       " + Self.help)
        default: break
        }
    }

    private func list() {
        // Read with a store of this thread's own: the dev server's is its loop's.
        let schedules = (try? Store(home: workspace.home).schedules(workspace.app)) ?? []
        state.withLock { $0.listed = schedules.map(\.name) }
        guard !schedules.isEmpty else {
            say("-----> No schedules in the code serving now.")
            return
        }
        say("-----> Schedules (press a number to run one now):")
        for (index, schedule) in schedules.enumerated() {
            let number = index < 9 ? "\(index + 1)" : " "
            say("       \(number)  \(schedule.name)  \(schedule.kind) \(schedule.spec)")
        }
        if schedules.count > 9 { say("       Past 9: gust dev --run NAME in another terminal.") }
    }

    private func run(_ name: String) {
        state.withLock { $0.last = name }
        say("-----> Running schedule \(name) now")
        let started = ContinuousClock.now
        do {
            if let failure = try AdminClient(home: workspace.home).runSchedule(app: workspace.app, name: name) {
                say(" !     schedule \(name) failed: \(failure)")
            } else {
                say("-----> schedule \(name) ran (\(DevServer.seconds(ContinuousClock.now - started)))")
            }
        } catch {
            say(" !     schedule \(name) did not run: \(error)")
        }
    }
}
