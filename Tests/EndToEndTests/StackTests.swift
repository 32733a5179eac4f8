import Foundation
import GustCore
import GustTesting
import Testing

/// Stacks for real: bookworm and trixie built with mmdebstrap (`StackCache`, once per run), pushes
/// that build and run on them, pins that choose between them or are refused, an older stack's
/// release running on after a newer one is built and gustd restarts.
@Suite(.serialized, .timeLimit(.minutes(30)))
struct StackTests {
    /// An op that reports the interpreter the instance runs on, `python3 --version` from inside, and
    /// whether a file the test put in the host's /usr exists in there.
    static func pythonApp(hostOnly: String) -> String {
        """
        import os, subprocess, sys
        import gust

        @gust.op('where')
        def where():
            run = subprocess.run(['python3', '--version'], capture_output=True, text=True)
            return {'python': '%d.%d.%d' % sys.version_info[:3], 'version': run.stdout.strip(),
                    'executable': sys.executable, 'host_only': os.path.exists(\(String(reflecting: hostOnly)))}
        """
    }

    /// A file only the host has, under /usr (which a release on the host's system sees), removed after.
    static func withHostOnlyFile<T>(_ body: (String) throws -> T) throws -> T {
        let path = "/usr/share/gust-host-only-\(UUID().uuidString.prefix(8).lowercased())"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("host\n".utf8), attributes: [.posixPermissions: 0o644]))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try body(path)
    }

    func release(_ fixture: PushFixture, _ version: Int) throws -> [String: Any] {
        let shown = try GustBinaries.gust(fixture.home, ["releases", "show", fixture.app, "v\(version)", "--json"])
        return try #require(try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any], "\(shown.output)")
    }

    @Test(.scratchDirectory) func aPushRunsOnTheDefaultStackAndAPythonPinMovesItToTheStackThatOffersIt() throws {
        let fixture = try PushFixture()
        let (bookworm, trixie) = try { let s = try StackCache.install(["bookworm", "trixie"], into: fixture.home); return (s[0], s[1]) }()
        let bookwormPython = try #require(bookworm.python), trixiePython = try #require(trixie.python)
        #expect(bookwormPython != trixiePython)
        try Self.withHostOnlyFile { hostOnly in
            // The sample app, unpinned: the default stack (the first built).
            let work = try fixture.workspace("py", copying: PushFixture.example("python-cats"))
            try work.write("where.py", Self.pythonApp(hostOnly: hostOnly))
            try work.write("__init__.py", (try String(contentsOf: work.directory.appendingPathComponent("__init__.py"), encoding: .utf8)) + "\nfrom . import where\n")
            try work.commit("Cats")
            let push = try work.push(to: fixture.remote)
            #expect(push.status == 0, "\(push.output)")
            #expect(push.stderr.contains("remote: -----> Stack bookworm@1: Python \(bookwormPython)"), "\(push.stderr)")
            #expect(try release(fixture, 1)["stack"] as? String == "bookworm@1")
            let bought = try fixture.call("POST", "/_/functions/food:buy", body: #"{"food": "salmon"}"#)
            #expect(bought.status == 200 && bought.text.contains("4.5"), "\(bought.text)")
            let onBookworm = try fixture.call("POST", "/_/functions/where")
            #expect(onBookworm.status == 200, "\(onBookworm.text)")
            let first = try #require(onBookworm.json, "\(onBookworm.text)")
            #expect(first["python"] as? String == bookwormPython)
            #expect(first["version"] as? String == "Python \(bookwormPython)")
            #expect(first["host_only"] as? Bool == false, "the instance sees the stack's /usr, nothing of the host's")

            // Pinned to trixie's Python (major.minor, as people write it): trixie.
            let minor = trixiePython.split(separator: ".").prefix(2).joined(separator: ".")
            try work.write(".python-version", "\(minor)\n")
            try work.commit("Pin Python \(minor)")
            let pinned = try work.push(to: fixture.remote)
            #expect(pinned.status == 0, "\(pinned.output)")
            #expect(pinned.stderr.contains("Stack trixie@1: Python \(trixiePython) (Python \(minor) pinned in .python-version)"), "\(pinned.stderr)")
            #expect(try release(fixture, 2)["stack"] as? String == "trixie@1")
            let onTrixie = try #require(try fixture.call("POST", "/_/functions/where").json)
            #expect(onTrixie["version"] as? String == "Python \(trixiePython)")
            #expect(onTrixie["host_only"] as? Bool == false)

            let listed = try GustBinaries.gust(fixture.home, ["stacks", "list", "--json"])
            let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]], "\(listed.output)")
            #expect(rows.map { $0["reference"] as? String } == ["bookworm@1", "trixie@1"])
            #expect(rows.map { $0["releases"] as? Int } == [1, 1])
            #expect(rows.first?["isDefault"] as? Bool == true)
        }
    }

    @Test(.scratchDirectory) func aNodeAppRunsOnTheDefaultStackAndEnginesNodeChoosesAmongStacks() throws {
        let fixture = try PushFixture(app: "reviews")
        let stacks = try StackCache.install(["bookworm", "trixie"], into: fixture.home)
        let (bookwormNode, trixieNode) = (try #require(stacks[0].node), try #require(stacks[1].node))
        let work = try fixture.workspace("node", copying: PushFixture.example("node-reviews"))
        try work.write("version.js", "const gust = require('gust');\ngust.op('nodeVersion', () => process.version);\n")
        try work.write("index.js", (try String(contentsOf: work.directory.appendingPathComponent("index.js"), encoding: .utf8)) + "\nrequire('./version');\n")
        try work.commit("Reviews")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
        #expect(try release(fixture, 1)["stack"] as? String == "bookworm@1")
        let hello = try fixture.call("POST", "/_/functions/hello", body: #"{"name": "stacks"}"#)
        #expect(hello.status == 200 && hello.text.contains("Hello, stacks!"), "\(hello.text)")
        #expect(try fixture.call("POST", "/_/functions/nodeVersion").text.contains("v\(bookwormNode)"))

        // engines.node as a range only trixie's Node satisfies.
        let trixieMajor = try #require(Int(trixieNode.split(separator: ".")[0]))
        var package = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: work.directory.appendingPathComponent("package.json"))) as? [String: Any])
        package["engines"] = ["node": ">=\(trixieMajor)"]
        try work.write("package.json", String(decoding: try JSONSerialization.data(withJSONObject: package), as: UTF8.self))
        try work.commit("Node \(trixieMajor)")
        let pinned = try work.push(to: fixture.remote)
        #expect(pinned.status == 0, "\(pinned.output)")
        #expect(try release(fixture, 2)["stack"] as? String == "trixie@1")
        #expect(try fixture.call("POST", "/_/functions/nodeVersion").text.contains("v\(trixieNode)"))
    }

    @Test(.scratchDirectory) func aPinNoStackOffersIsRejectedNamingWhatIsOfferedAndTheLiveReleaseAnswers() throws {
        let fixture = try PushFixture()
        let stacks = try StackCache.install(["bookworm", "trixie"], into: fixture.home)
        let work = try fixture.workspace("py", copying: PushFixture.example("python-cats"))
        try work.commit("Cats")
        #expect(try work.push(to: fixture.remote).status == 0)

        try work.write(".python-version", "3.9\n")
        try work.commit("Python 3.9")
        let rejected = try work.push(to: fixture.remote)
        #expect(rejected.status != 0)
        let offered = "Python 3.9 is pinned in .python-version; stacks offer Python \(stacks[0].python!) (bookworm@1) and \(stacks[1].python!) (trixie@1)."
        #expect(rejected.stderr.contains(offered), "\(rejected.stderr)")
        #expect(rejected.stderr.contains("keeps serving v1"), "\(rejected.stderr)")

        try work.write(".python-version", "banana\n")
        try work.commit("Garbage")
        let garbage = try work.push(to: fixture.remote)
        #expect(garbage.status != 0)
        #expect(garbage.stderr.contains("\"banana\" is not a Python version"), "\(garbage.stderr)")

        #expect(try fixture.call("POST", "/_/functions/food:buy", body: #"{"food": "tuna"}"#).status == 200)
        #expect(try fixture.store().app(try AppName("cats"))?.liveVersion == 1)
    }

    /// Ctrl-C at a terminal reaches `gust`'s process group alone: mmdebstrap runs in a session of its
    /// own. `gust stacks build` stops it then (SIGTERM, time for it to take down what it mounted in
    /// the new root), says the build was interrupted and leaves nothing: no mount, no process, no
    /// `.building-*`. (Before, `gust` died at once and mmdebstrap ran on, orphaned.) A `gust` killed
    /// outright (SIGKILL, the OOM killer) can do none of that: the shell it left between itself and
    /// mmdebstrap stops every process of the build as its parent dies (as Ctrl-C at mmdebstrap's own
    /// terminal would), and the next build takes down and removes what was left.
    @Test(.scratchDirectory, arguments: [SIGINT, SIGKILL])
    func anInterruptedBuildStopsMmdebstrapAndLeavesNothing(_ signal: Int32) throws {
        let home = GustHome(path: ScratchDirectory.current.appendingPathComponent("home").path)
        try FileManager.default.createDirectory(at: home.root, withIntermediateDirectories: true)
        let output = ScratchDirectory.current.appendingPathComponent("build.out")
        #expect(FileManager.default.createFile(atPath: output.path, contents: nil))
        let written = try FileHandle(forWritingTo: output)
        let build = Process()
        build.executableURL = URL(fileURLWithPath: GustBinaries.gust)
        build.arguments = ["stacks", "build", "bookworm", "--without-npm", "--home", home.root.path]
        (build.standardOutput, build.standardError) = (written, written)
        try build.run()
        func text() -> String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }
        func mountLines() -> [String] {
            ((try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
                .filter { $0.contains(" \(home.stacks.path)/") }
        }
        func mounted() -> Bool { !mountLines().isEmpty }
        /// The processes whose command line names the home (mmdebstrap and its children), or whose
        /// root or working directory is in it (dpkg, chrooted into the new root), as command lines,
        /// or as PIDs.
        func leftRunning(pids: Bool = false) -> [String] {
            func inHome(_ link: String) -> Bool {
                ((try? FileManager.default.destinationOfSymbolicLink(atPath: link)) ?? "").hasPrefix(home.root.path + "/")
            }
            return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { $0.allSatisfy(\.isNumber) }.compactMap { pid in
                let command = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
                guard command.contains(home.root.path) || inHome("/proc/\(pid)/root") || inHome("/proc/\(pid)/cwd"),
                      Int32(pid) != getpid() else { return nil }
                return pids ? pid : command.replacingOccurrences(of: "\0", with: " ")
            }
        }

        defer {
            // Should this fail: every process of the build stopped by PID, and nothing left mounted
            // for the scratch directory's removal to walk into.
            if build.isRunning { kill(build.processIdentifier, SIGKILL) }
            for pid in leftRunning(pids: true).compactMap({ Int32($0) }) where pid > 1 { kill(pid, SIGKILL) }
            let mountinfo = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
            for line in mountinfo.split(separator: "\n").reversed() {
                let point = line.split(separator: " ")[4]
                if point.hasPrefix(home.stacks.path + "/") { umount2(String(point), Int32(MNT_DETACH)) }
            }
        }

        // Well under way: mmdebstrap has mounted proc, sys and dev in the new root.
        let deadline = Date().addingTimeInterval(600)
        while !mounted(), build.isRunning, Date() < deadline { usleep(50_000) }
        try #require(mounted(), "mmdebstrap mounted file systems in its root:\n\(text())")
        kill(build.processIdentifier, signal)  // SIGINT: a terminal's Ctrl-C, to gust's process group (gust alone)
        let stopping = Date().addingTimeInterval(120)
        while build.isRunning, Date() < stopping { usleep(50_000) }
        #expect(!build.isRunning, "gust stopped")
        build.waitUntilExit()
        if signal == SIGINT { #expect(build.terminationStatus != 0 && text().contains("interrupted"), "\(text())") }
        let waiting = Date().addingTimeInterval(60)  // mmdebstrap's own children, reaped by now or soon
        while !leftRunning().isEmpty || (signal == SIGINT && mounted()), Date() < waiting { usleep(100_000) }
        #expect(leftRunning().isEmpty, "no process of the build left: \(leftRunning())")
        if signal == SIGKILL {
            // Stopped, not let run to its end: nothing of what it installs after the essential
            // packages (mmdebstrap's worker went on alone when only mmdebstrap itself got SIGTERM,
            // and on a quiet machine finished the whole root within the wait above).
            let unfinished = ((try? FileManager.default.contentsOfDirectory(atPath: home.stacks.path)) ?? []).filter { $0.hasPrefix(".building-") }
            #expect(unfinished.count == 1, "\(unfinished)")
            for name in unfinished {
                let node = home.stacks.appendingPathComponent(name).appendingPathComponent("rootfs/usr/bin/node").path
                #expect(!FileManager.default.fileExists(atPath: node), "mmdebstrap ran on after gust was killed: \(node)")
            }
            // What the killed gust could not take down or remove (mounts mmdebstrap made before it
            // could undo them), the next build does (it fails here: no mirror).
            _ = try? Command.run(GustBinaries.gust, ["stacks", "build", "bookworm", "--mirror", "http://127.0.0.1:9/debian", "--home", home.root.path])
        }
        // Should this fail, what was left and what gust said of it (its last lines).
        let said = text().split(separator: "\n").suffix(12).joined(separator: "\n")
        #expect(!mounted(), "nothing left mounted: \(mountLines())\n\(said)")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: home.stacks.path)) ?? []
        #expect(!left.contains { $0.hasPrefix(".building-") }, "\(left)\n\(said)")
    }

    @Test(.scratchDirectory) func aReleaseOnAnOlderStackRunsAfterANewerVersionIsBuiltAndGustdRestarts() throws {
        let fixture = try PushFixture()
        let bookworm = try StackCache.install(["bookworm"], into: fixture.home)[0]
        let work = try fixture.workspace("py", copying: PushFixture.example("python-cats"))
        try work.commit("Cats")
        #expect(try work.push(to: fixture.remote).status == 0)
        #expect(try release(fixture, 1)["stack"] as? String == "bookworm@1")

        // bookworm@2, built for real while gustd serves v1.
        let built = try GustBinaries.gust(fixture.home, ["stacks", "build", "bookworm", "--without-npm"])
        #expect(built.status == 0, "\(built.output)")
        #expect(built.stdout.contains("-----> Built bookworm@2"), "\(built.stdout)")
        let second = try #require(try StackCatalog(home: fixture.home).stack(try Stack.Reference(parsing: "bookworm@2")))
        #expect(second.python == bookworm.python)
        #expect(try fixture.call("POST", "/_/functions/food:buy", body: #"{"food": "tuna"}"#).status == 200)

        // The next push builds on bookworm@2; a rollback to v1 runs on bookworm@1 again.
        try work.write("README.md", "v2\n")
        try work.commit("Again")
        #expect(try work.push(to: fixture.remote).status == 0)
        #expect(try release(fixture, 2)["stack"] as? String == "bookworm@2")
        let rolledBack = try GustBinaries.gust(fixture.home, ["rollback", "cats", "v1"])
        #expect(rolledBack.status == 0, "\(rolledBack.output)")
        #expect(try release(fixture, 3)["stack"] as? String == "bookworm@1")
        #expect(try fixture.call("POST", "/_/functions/food:buy", body: #"{"food": "tuna"}"#).status == 200)
        // `gust releases` shows each release's stack.
        let table = try GustBinaries.gust(fixture.home, ["releases", "cats"])
        let rows = table.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        #expect(rows.first?.contains("STACK") == true, "\(table.output)")
        let stacks = Dictionary(rows.dropFirst().compactMap { row in row.first.map { ($0, row) } }, uniquingKeysWith: { a, _ in a })
        #expect(stacks["v1"]?.contains("bookworm@1") == true && stacks["v2"]?.contains("bookworm@2") == true
                && stacks["v3"]?.contains("bookworm@1") == true, "\(table.output)")

        // Each exports with its own stack's layer: v1 and v3 with bookworm@1's, v2 with bookworm@2's.
        var stackLayers: [Int: String] = [:]
        for version in [1, 2, 3] {
            let layout = fixture.root.appendingPathComponent("v\(version)-oci")
            let exported = try GustBinaries.gust(fixture.home, ["releases", "export", "cats", "v\(version)", "--oci", layout.path, "--json"])
            #expect(exported.status == 0, "\(exported.output)")
            let object = try JSONSerialization.jsonObject(with: Data(exported.stdout.utf8)) as? [String: Any]
            stackLayers[version] = (object?["layers"] as? [String])?.first
            try? FileManager.default.removeItem(at: layout)
        }
        #expect(stackLayers[1] != nil && stackLayers[1] == stackLayers[3] && stackLayers[2] != nil && stackLayers[2] != stackLayers[1], "\(stackLayers)")

        // bookworm@1 is kept while releases run on it.
        let removal = try GustBinaries.gust(fixture.home, ["stacks", "remove", "bookworm@1"])
        #expect(removal.status != 0 && removal.output.contains("bookworm@1 is kept: cats v1, cats v3 run on it"), "\(removal.output)")

        let gustd = try #require(fixture.gustd)
        gustd.stop()
        try gustd.start()
        let after = try fixture.call("POST", "/_/functions/food:buy", body: #"{"food": "tuna"}"#)
        #expect(after.status == 200, "\(after.text)\n\(gustd.logText)")
    }

    /// Dependencies from PyPI, installed by the stack's own pip into a venv of the stack's Python;
    /// the pin in runtime.txt, Heroku's spelling.
    @Test(.scratchDirectory) func aFlaskAppInstallsItsRequirementsWithTheStacksPip() throws {
        let fixture = try PushFixture(app: "flask")
        let stacks = try StackCache.install(["bookworm", "trixie"], into: fixture.home)
        let work = try fixture.workspace("flask", copying: PushFixture.example("python-flask"))
        let minor = try #require(stacks[1].python).split(separator: ".").prefix(2).joined(separator: ".")
        try work.write("runtime.txt", "python-\(minor)\n")
        try work.commit("Flask on trixie")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
        #expect(push.stderr.contains("pinned in runtime.txt") && push.stderr.contains("Installing requirements"), "\(push.stderr)")
        #expect(try release(fixture, 1)["stack"] as? String == "trixie@1")
        #expect(try fixture.call("GET", "/").text == "Hello from Flask, through Gust!\n")
        let venv = try String(contentsOf: fixture.home.release(try AppName("flask"), version: 1).appendingPathComponent(".venv/pyvenv.cfg"), encoding: .utf8)
        #expect(venv.contains("version = \(stacks[1].python!)") || venv.contains("version_info = \(stacks[1].python!)"), "\(venv)")
    }

    /// Without the sandbox a stack's release would run on the host's interpreter: refused, saying why;
    /// and gustd, which runs builds, refuses to build an app on a stack before it compiles.
    @Test(.scratchDirectory) func aStackReleaseIsRefusedByAGustdWithoutTheSandbox() throws {
        let fixture = try PushFixture()
        _ = try StackCache.install(["bookworm"], into: fixture.home)
        let work = try fixture.workspace("py", copying: PushFixture.example("python-cats"))
        try work.commit("Cats")
        let built = try work.push(to: fixture.remote)
        #expect(built.status == 0, "\(built.output)")
        fixture.gustd?.stop()
        let unsandboxed = try GustdProcess(home: fixture.home, arguments: ["--sandbox", "none"])
        defer { unsandboxed.stop() }

        // v2 (a config change) reuses v1's artifact, built on the stack: it cannot start here.
        let changed = try GustBinaries.gust(fixture.home, ["config", "set", "cats", "COLOR=red"])
        #expect(changed.output.contains("was built on stack bookworm@1 and runs only on it, in the sandbox; this gustd runs without one (--sandbox none)"), "\(changed.output)")

        // A push is refused before it compiles: gustd builds without the sandbox, and stacks need it.
        try work.write("README.md", "again\n")
        try work.commit("Again")
        let push = try work.push(to: fixture.remote)
        #expect(push.status != 0)
        #expect(push.stderr.contains("This app builds on stack bookworm@1, and builds run on a stack only in the sandbox"), "\(push.stderr)")
        #expect(!push.stderr.contains("-----> Python 3"), "nothing compiled on the host's Python")
    }
}
