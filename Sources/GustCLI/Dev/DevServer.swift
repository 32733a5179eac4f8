#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GustBuild
import GustCore
import Synchronization

/// `gust dev`'s loop: build the dependencies once per key, make a release of
/// the work tree, have the dev gustd deploy it, then poll the tree and deploy
/// again on every change. A deploy is gustd's own (start, manifest, health,
/// switch, drain), so a release that fails at import is never switched to:
/// its traceback is printed and the last good release keeps answering.
final class DevServer {
    let workspace: DevWorkspace
    let installation: Installation
    let store: Store
    private let dependencies: DevDependencies
    /// The last tree deployed (or tried), and what it was built with.
    private var tree = DevTree()
    private var config = DotEnv()
    private var dependencyKey = ""
    private var built: DevDependencies.Built?
    /// Set while a deploy runs: the instance's start-up output comes with its progress, not from the log.
    private let deploying = DeployingFlag()

    /// How often the tree is read for changes.
    static let poll: Duration = .milliseconds(50)
    /// Set by SIGINT or SIGTERM.
    static let stopRequested = Atomic(false)

    init(workspace: DevWorkspace, installation: Installation) throws {
        self.workspace = workspace
        self.installation = installation
        try workspace.home.prepare()
        if let running = workspace.runningPort {
            throw GustError(
                "gust dev is already running for \(DevWorkspace.shown(workspace.tree.path)) at http://127.0.0.1:\(running)/.",
                code: 409, hint: "Stop it first (Ctrl-C in its terminal), or call it: gust call --dev OP"
            )
        }
        store = try Store(home: workspace.home)
        if try store.app(workspace.app) == nil { _ = try store.createApp(workspace.app) }
        // What a previous session served is not started again: this session deploys the tree as it is now.
        try store.setLive(workspace.app, version: nil)
        dependencies = DevDependencies(workspace: workspace, installation: installation)
    }

    func run(port: Int) async throws {
        Self.trapSignals()
        let started = ContinuousClock.now
        say("-----> gust dev: \(workspace.tree.path) as app \(workspace.app)")
        try await refresh(changed: [])
        let gustd = try DevGustd(workspace, port: port, installation: installation)
        var follower: DevLogFollower?
        defer {
            gustd.stop()
            follower?.finish()  // after gustd, so what the functions wrote to the end is shown
        }
        // Its PID, for whoever must stop it if this process cannot (tests do).
        try Data("\(gustd.pid)\n".utf8).write(to: workspace.home.root.appendingPathComponent("gustd.pid"))
        let serving = try gustd.waitUntilServing()
        deploy(reason: "Starting")
        say("-----> Serving http://127.0.0.1:\(serving)/ (ready in \(Self.seconds(ContinuousClock.now - started)))")
        say("       Records (/_/records/TYPE) take X-Auth-Token: \(try recordsToken())")
        say("       Edit and save: the functions reload. `gust call --dev OP [JSON]` calls an op; Ctrl-C stops.")
        follower = startLogFollower()
        let keys = DevKeys(workspace: workspace)
        defer { keys?.restore() }
        if let keys {
            say("       " + DevKeys.help)
            keys.start { DevServer.stopRequested.load(ordering: .relaxed) }
        }

        while !Self.stopRequested.load(ordering: .relaxed) {
            try? await Task.sleep(for: Self.poll)
            if let exit = gustd.exitStatus() {
                throw GustError("gustd stopped (\(exit)):\n\(gustd.logTail())")
            }
            var now: DevTree
            do { now = try DevTree.scan(workspace.tree) } catch {
                say(" !     \(error)")
                continue
            }
            guard !now.changes(since: tree).isEmpty else { continue }
            let root = workspace.tree
            do {
                now = try await DevTree.settled(now, pause: Self.poll, scan: { try DevTree.scan(root) }, sleep: { try? await Task.sleep(for: $0) })
            } catch {
                say(" !     \(error)")
                continue
            }
            let changed = now.changes(since: tree)
            guard !changed.isEmpty else { continue }
            do {
                try await refresh(changed: changed, scanned: now)
                deploy(reason: "Reloading (\(Self.list(changed)))")
            } catch {
                tree = now  // the next change tries again
                say(" !     \(error)")
                say("       The last good code keeps serving.")
            }
        }
        say("-----> Stopping")
    }

    /// The dev app's token for its record store, kept in the dev home across sessions.
    private func recordsToken() throws -> String {
        let file = workspace.home.root.appendingPathComponent("dev.token")
        if let kept = try? String(contentsOf: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
            (try? store.verifyToken(workspace.app, secret: kept)) == true
        {
            return kept
        }
        let made = try store.createToken(workspace.app, description: "gust dev", expiresAt: nil)
        try Data((made.secret + "\n").utf8).write(to: file)
        return made.secret
    }

    /// Reads the tree and its config, and builds the dependencies again if their key changed.
    private func refresh(changed: [String], scanned: DevTree? = nil) async throws {
        let now = try scanned ?? DevTree.scan(workspace.tree)
        tree = now
        if changed.isEmpty || changed.contains(DevTree.configFile) {
            config = try DotEnv.read(workspace.tree.appendingPathComponent(DevTree.configFile))
            if !config.skipped.isEmpty {
                say(" !     .env: lines \(config.skipped.map(String.init).joined(separator: ", ")) are not NAME=value; left out")
            }
        }
        let key = dependencies.key(of: now)
        if key != dependencyKey || built == nil {
            let files = changed.filter(DevTree.dependencyFiles.contains)
            if !changed.isEmpty { say("-----> Dependencies changed: building them" + (files.isEmpty ? "" : " (\(Self.list(files)))")) }
            built = try await dependencies.prepare(key, tree: now, config: config.values)
            dependencyKey = key
        }
    }

    /// Records a release of the tree as read, and has gustd deploy it.
    private func deploy(reason: String) {
        guard let built else { return }
        let started = ContinuousClock.now
        say("-----> \(reason)")
        deploying.begin()
        defer { deploying.end() }
        do {
            let release = try store.recordRelease(workspace.app, NewRelease(
                status: .built, buildpack: built.buildpack, artifact: "work-tree", artifactSize: 0, process: built.process,
                description: "gust dev: \(reason)", config: config.values
            ))
            try dependencies.makeRelease(at: workspace.home.release(workspace.app, version: release.version), tree: tree, key: dependencyKey, built: built)
            try AdminClient(home: workspace.home).deploy(app: workspace.app, version: release.version) { line in
                if Self.shownProgress(line) { say("       " + self.inTree(line)) }
            }
            say("-----> v\(release.version) serving (\(Self.seconds(ContinuousClock.now - started)))")
        } catch {
            say(" !     \(error)")
            let live = (try? store.app(workspace.app))?.liveVersion
            say(live.map { "       v\($0), the last good code, keeps serving; fix the error and save again." } ?? "       Nothing serves yet; fix the error and save again.")
        }
    }

    /// A line with paths of a release directory shown as paths of the work tree (a traceback names the files to fix).
    func inTree(_ line: String) -> String {
        Self.inTree(line, releases: workspace.home.releases(workspace.app).path + "/v", tree: workspace.tree.path)
    }

    static func inTree(_ line: String, releases: String, tree: String) -> String {
        guard line.contains(releases) else { return line }
        var out = ""
        var rest = Substring(line)
        while let found = rest.range(of: releases) {
            out += rest[..<found.lowerBound]
            let afterVersion = rest[found.upperBound...].drop { $0.isNumber }
            guard afterVersion.first == "/" else {
                out += rest[found]
                rest = rest[found.upperBound...]
                continue
            }
            out += tree
            rest = afterVersion
        }
        return out + rest
    }

    /// The deploy's lines worth a developer's eye: the manifest and what the code printed, not gustd's steps.
    static func shownProgress(_ line: String) -> Bool {
        let steps = ["Starting instance ", "Health check passed", "Switched traffic to ", "Stopping ", "Unpacking "]
        return !steps.contains { line.hasPrefix($0) }
    }

    /// Prints what the functions write, as it comes, on a thread of its own (the log is a file gustd appends to).
    private func startLogFollower() -> DevLogFollower {
        let log = AppLog(home: workspace.home, app: workspace.app)
        let deploying = self.deploying
        let (releases, tree) = (workspace.home.releases(workspace.app).path + "/v", workspace.tree.path)
        return DevLogFollower { finished in
            log.follow(poll: .milliseconds(50), finished: finished) { entry in
                // Start-up output during a deploy arrives with its progress.
                if entry.function == nil, deploying.covers(entry.time) { return true }
                say(Self.inTree(Self.format(entry), releases: releases, tree: tree))
                return true
            }
        }
    }

    /// `12:00:01 [op food:buy] Meow`, `!` before stderr lines; the app's words shown as text, never
    /// as escapes the terminal would act on (`gust call -v` prints a pushed release's lines).
    static func format(_ entry: LogEntry) -> String {
        var parts = [clock.string(from: entry.time)]
        if let function = entry.function { parts.append("[\(function.visibleAtTerminal)]") }
        if entry.stream == "stderr" { parts.append("!") }
        if entry.stream == "gustd" { parts.append("gustd:") }
        return (parts + [entry.line.visibleAtTerminal]).joined(separator: " ")
    }

    private static let clock: DateFormatter = {
        let format = DateFormatter()
        format.dateFormat = "HH:mm:ss"
        return format
    }()

    private static func trapSignals() {
        _ = stopRequested.load(ordering: .relaxed)  // made now, not first inside a signal handler
        signal(SIGINT) { _ in DevServer.stopRequested.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in DevServer.stopRequested.store(true, ordering: .relaxed) }
    }

    static func seconds(_ duration: Duration) -> String { String(format: "%.2f s", duration.seconds) }

    static func list(_ paths: [String]) -> String {
        let shown = paths.prefix(3).map { DevWorkspace.shown($0).dropFirst().dropLast() }.joined(separator: ", ")
        return paths.count > 3 ? "\(shown) and \(paths.count - 3) more" : shown
    }
}

/// The thread that prints the app's log while gust dev runs. `finish` has it print what is
/// left and waits for that (bounded): a Ctrl-C right after a call still shows the call's output.
final class DevLogFollower: Sendable {
    private let finishing = Atomic(false)
    private let done = DispatchSemaphore(value: 0)

    init(_ follow: @escaping @Sendable (_ finished: () -> Bool) -> Void) {
        Thread { [self] in
            follow { finishing.load(ordering: .relaxed) }
            done.signal()
        }.start()
    }

    func finish(within bound: DispatchTimeInterval = .seconds(2)) {
        finishing.store(true, ordering: .relaxed)
        _ = done.wait(timeout: .now() + bound)
    }
}

/// When deploys ran, read by the log follower's thread: start-up output of
/// that time was printed with the deploy's progress already.
final class DeployingFlag: Sendable {
    private let running = Atomic(false)
    /// When the last deploy ended, in milliseconds since 1970.
    private let lastEnd = Atomic<Int>(0)

    func begin() { running.store(true, ordering: .relaxed) }

    func end() {
        lastEnd.store(Int(Date().timeIntervalSince1970 * 1000), ordering: .relaxed)
        running.store(false, ordering: .relaxed)
    }

    func covers(_ time: Date) -> Bool {
        running.load(ordering: .relaxed) || Int(time.timeIntervalSince1970 * 1000) <= lastEnd.load(ordering: .relaxed)
    }
}

/// One line to the terminal, whole, whichever thread prints it.
func say(_ line: String) {
    let data = Data((line + "\n").utf8)
    data.withUnsafeBytes { _ = write(STDOUT_FILENO, $0.baseAddress, $0.count) }
}
