import Foundation
import GustCore
import GustTesting
import Testing

/// `gust dev` for real: the built gust and gustd, real Python and Node
/// instances, a real work tree edited on disk, real HTTP on loopback.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct DevTests {
    /// One call, sent to the pushed release and to the dev server alike.
    struct Call: CustomStringConvertible {
        var method: String
        var path: String
        var body: String?
        var records = false
        var description: String { "\(method) \(path) \(body ?? "")" }
    }

    static let sampleCalls: [String: [Call]] = [
        "python-cats": [
            Call(method: "POST", path: "/_/functions/food:buy", body: #"{"food": "salmon"}"#),
            Call(method: "POST", path: "/_/functions/food:buy", body: #"{"food": "caviar"}"#),
            Call(method: "POST", path: "/_/functions/food:buy", body: #"{"food": "#),
            Call(method: "POST", path: "/_/functions/nothing", body: "{}"),
            Call(method: "GET", path: "/cat/feed"),
            Call(method: "POST", path: "/cat/feed"),
            Call(method: "GET", path: "/no/such/path"),
            Call(method: "GET", path: "/_gust/manifest"),
            Call(method: "POST", path: "/_/records/cat", body: #"{"name": ""}"#, records: true),
            Call(method: "POST", path: "/_/records/cat", body: #"{"name": "Tom"}"#, records: true),
        ],
        "node-reviews": [
            Call(method: "POST", path: "/_/functions/hello", body: #"{"name": "Bo"}"#),
            Call(method: "POST", path: "/_/functions/hello", body: "{}"),
            Call(method: "POST", path: "/_/functions/addReview", body: #"{"movie": "Up", "stars": 4}"#),
            Call(method: "POST", path: "/_/functions/averageStars", body: #"{"movie": "Up"}"#),
            Call(method: "GET", path: "/reviews/about"),
            Call(method: "GET", path: "/_/functions/hello"),
            Call(method: "POST", path: "/_/records/Review", body: #"{"movie": "Up"}"#, records: true),
        ],
    ]

    /// What may differ between two servers' answers: a record's id and times (`_id`, `_created_at` …).
    static func comparable(_ result: HTTPResult) -> String {
        guard var object = try? JSONSerialization.jsonObject(with: result.body) as? [String: Any] else {
            return "\(result.status) \(result.text)"
        }
        for key in object.keys where key.hasPrefix("_") || ["id", "objectId", "createdAt", "updatedAt"].contains(key) { object[key] = nil }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return "\(result.status) \(String(decoding: data, as: UTF8.self))"
    }

    @Test(.scratchDirectory, arguments: ["python-cats", "node-reviews"])
    func devAnswersTheSameCallsAsAPushedRelease(example: String) throws {
        let app = example == "python-cats" ? "cats" : "reviews"
        let pushed = try PushFixture(app: app)
        let work = try pushed.workspace("push", copying: PushFixture.example(example))
        try work.commit("Example")
        let push = try work.push(to: pushed.remote)
        #expect(push.status == 0, "\(push.output)")
        let token = try GustBinaries.gust(pushed.home, ["tokens", "create", app]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        let dev = try DevServerFixture(try DevServerFixture.example(example))
        defer { dev.stop() }
        let devToken = try #require(dev.recordsToken, "\(dev.output)")
        // The manifest is printed at start, as a push prints it.
        #expect(dev.output.contains(example == "python-cats" ? "op       food:buy" : "op       hello"), "\(dev.output)")

        for call in Self.sampleCalls[example]! {
            let fromPush = try pushed.call(call.method, call.path, body: call.body, headers: call.records ? ["X-Auth-Token": token] : [:])
            let fromDev = try dev.call(call.method, call.path, body: call.body, headers: call.records ? ["X-Auth-Token": devToken] : [:])
            #expect(Self.comparable(fromDev) == Self.comparable(fromPush), "\(call)")
        }
        let health = try dev.call("GET", "/_/health")
        #expect(health.status == 200 && health.json?["state"] as? String == "running", "\(health.text)")
        // The same app answers by its name too, as on a server.
        #expect(try dev.call("GET", "/apps/\(DevWorkspaceName.of(dev.directory))/_/health").status == 404, "only the app's own paths: /apps/ is its path")
    }

    @Test(.scratchDirectory) func anEditIsServedAndAnImportErrorKeepsTheLastGoodCode() throws {
        let directory = try DevServerFixture.example("python-cats")
        let dev = try DevServerFixture(directory)
        defer { dev.stop() }
        let buy = { try dev.call("POST", "/_/functions/food:buy", body: #"{"food": "salmon"}"#) }
        #expect(try buy().json?["price"] as? Double == 4.5)

        // Written by rename: gust dev must never read a half-written file (it also waits for an
        // edit written in place to hold still: DevParsingTests.aChangeIsTakenOnceTheTreeHoldsStill).
        let food = directory.appendingPathComponent("food.py")
        try "PRICES = {'salmon': 5.25, 'tuna': 3.0, 'kibble': 1.25}\n".write(to: food, atomically: true, encoding: .utf8)
        #expect(try dev.waitUntil(30) { try buy().json?["price"] as? Double == 5.25 }, "\(dev.output)")
        #expect(dev.output.components(separatedBy: "op       food:buy").count >= 3, "the new manifest is printed: \(dev.output)")
        #expect(dev.output.contains("Reloading (food.py)"), "\(dev.output)")

        // An import error: the traceback is shown, and the last good code keeps answering.
        try "raise RuntimeError('broken on purpose')\nPRICES = {}\n".write(to: food, atomically: true, encoding: .utf8)
        #expect(dev.command.waitForOutput(upTo: 30) { $0.contains("keeps serving") }, "\(dev.output)")
        #expect(dev.output.contains("RuntimeError: broken on purpose"), "the traceback: \(dev.output)")
        #expect(dev.output.contains("Traceback"), "\(dev.output)")
        #expect(try buy().json?["price"] as? Double == 5.25, "the last good code answers")
        #expect(try dev.call("GET", "/_/health").json?["state"] as? String == "running")

        // A new file and the fix: both seen.
        try "PRICES = {'salmon': 6.0}\n".write(to: food, atomically: true, encoding: .utf8)
        #expect(try dev.waitUntil(30) { try buy().json?["price"] as? Double == 6.0 }, "\(dev.output)")
    }

    @Test(.scratchDirectory) func dotEnvConfigSchedulesAndGustCall() throws {
        let directory = ScratchDirectory.current.appendingPathComponent("My Greeter")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try """
            import os
            import gust

            @gust.op('greet')
            def greet(name='world'):
                print('greeting', name)
                return {'greeting': os.environ.get('GREETING', '?') + ', ' + name}

            @gust.every('1h')
            def tick():
                print('tick ran with', os.environ.get('GREETING'))
            """.write(to: directory.appendingPathComponent("__init__.py"), atomically: true, encoding: .utf8)
        try "# config\nexport GREETING=\"Hello there\"\nIGNORED LINE\n".write(to: directory.appendingPathComponent(".env"), atomically: true, encoding: .utf8)

        let dev = try DevServerFixture(directory)
        defer { dev.stop() }
        #expect(dev.output.contains("schedule tick every 1h"), "schedules are listed at start: \(dev.output)")
        #expect(!dev.output.contains("Keys: s lists"), "no keys without a terminal: \(dev.output)")
        #expect(dev.output.contains(".env: lines 3 are not NAME=value"), "\(dev.output)")
        #expect(try dev.call("POST", "/_/functions/greet", body: #"{"name": "Ann"}"#).json?["greeting"] as? String == "Hello there, Ann")

        // gust call --dev: the answer on stdout; with -v the status and the call's own lines.
        let called = try dev.gust(["call", "--dev", "--dir", directory.path, "greet", #"{"name": "Bo"}"#])
        #expect(called.status == 0, "\(called.output)")
        #expect(called.stdout.contains(#""greeting":"Hello there, Bo""#) || called.stdout.contains(#""greeting": "Hello there, Bo""#), "\(called.output)")
        let verbose = try dev.gust(["call", "--dev", "--dir", directory.path, "-v", "greet", "-"], input: #"{"name": "Cy"}"#)
        #expect(verbose.status == 0, "\(verbose.output)")
        #expect(verbose.stderr.contains("HTTP 200"), "\(verbose.output)")
        #expect(verbose.stderr.contains("[op greet] greeting Cy"), "\(verbose.output)")
        #expect(!verbose.stderr.contains("greeting Bo"), "only this call's lines: \(verbose.output)")
        // What `gust call -v` asks before it reads the log: gustd says the app's output is all in it.
        #expect(AdminClient(home: dev.home).awaitOutputDelivered(app: try AppName("my-greeter")))
        let notJSON = try dev.gust(["call", "--dev", "--dir", directory.path, "greet", "{name"])
        #expect(notJSON.status != 0 && notJSON.output.contains("not JSON"), "\(notJSON.output)")
        let missing = try dev.gust(["call", "--dev", "--dir", directory.path, "nope"])
        #expect(missing.status == 1 && missing.stdout.contains("404"), "\(missing.output)")

        // gust dev --run: the schedule runs now, its output printed.
        let ran = try dev.gust(["dev", directory.path, "--run", "tick"])
        #expect(ran.status == 0, "\(ran.output)")
        // The run's own lines are in the log before its end: gustd waits for them to be read.
        let ranLines = ran.stdout.split(separator: "\n").map(String.init)
        let printed = ranLines.firstIndex { $0.contains("tick ran with Hello there") }
        let finished = ranLines.firstIndex { $0.contains("Run finished") }
        #expect(printed != nil && finished != nil && printed! < finished!, "\(ran.output)")
        let unknown = try dev.gust(["dev", directory.path, "--run", "nope"])
        #expect(unknown.status != 0 && unknown.output.contains("no schedule named 'nope'"), "\(unknown.output)")

        // A change to .env is a new config.
        try "GREETING=Hi\n".write(to: directory.appendingPathComponent(".env"), atomically: true, encoding: .utf8)
        #expect(try dev.waitUntil(30) {
            try dev.call("POST", "/_/functions/greet", body: "{}").json?["greeting"] as? String == "Hi, world"
        }, "\(dev.output)")

        // A second gust dev for the same directory is refused, saying where the first one is.
        let second = try dev.gust(["dev", directory.path, "--port", "0"])
        #expect(second.status != 0 && second.output.contains("already running"), "\(second.output)")
    }

    /// The shared protocol cases (buildpacks/protocol-tests) over HTTP against `gust dev` serving
    /// their fixture app: what a server answers from outside, `gust dev` answers the same.
    @Test(.scratchDirectory, arguments: ["python", "node"])
    func theSharedProtocolCasesPassAgainstGustDev(runtime: String) throws {
        let directory = ScratchDirectory.current.appendingPathComponent("fixture-\(runtime)")
        try FileManager.default.copyItem(
            at: GustBinaries.sourceRoot.appendingPathComponent("buildpacks/protocol-tests/apps/\(runtime)"), to: directory)
        let dev = try DevServerFixture(directory)
        defer { dev.stop() }
        let run = GustBinaries.sourceRoot.appendingPathComponent("buildpacks/protocol-tests/run.py").path
        let result = try Command.run("python3", [run, "--url", "http://127.0.0.1:\(dev.port)", runtime], timeout: 300)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.stdout.contains(" passed, 0 failed"), "\(result.output)")
    }

    /// A WebSocket through `gust dev` (ws on gust.server, Debian's, vendored): the same gustd path as a server.
    @Test(.scratchDirectory) func aWebSocketWorksThroughGustDev() throws {
        let directory = ScratchDirectory.current.appendingPathComponent("sockets")
        try MountTests.vendor("ws", into: directory.appendingPathComponent("node_modules"))
        try #"{"name": "sockets", "version": "1.0.0", "main": "index.js", "private": true}"#
            .write(to: directory.appendingPathComponent("package.json"), atomically: true, encoding: .utf8)
        try """
            const { WebSocketServer } = require('ws');
            const gust = require('gust');
            new WebSocketServer({ server: gust.server, path: '/echo' })
              .on('connection', (socket) => socket.on('message', (data, binary) => socket.send(binary ? data : `echo: ${data}`)));
            gust.op('hello', () => 'hi');
            """.write(to: directory.appendingPathComponent("index.js"), atomically: true, encoding: .utf8)
        let dev = try DevServerFixture(directory)
        defer { dev.stop() }
        try WebSocketTests.converse("ws://127.0.0.1:\(dev.port)/echo")
    }

    /// In a terminal (a real pseudo-terminal, Python's pty), `s` lists the schedules, a digit runs
    /// one now and `r` runs it again; without a terminal (the fixtures' pipes) no keys are offered.
    @Test(.scratchDirectory) func aKeyInTheDevTerminalRunsASchedule() throws {
        let directory = ScratchDirectory.current.appendingPathComponent("keys")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try """
            import gust

            @gust.every('1h')
            def tick():
                print('tick ran now')

            @gust.cron('@daily')
            def tidy():
                pass
            """.write(to: directory.appendingPathComponent("__init__.py"), atomically: true, encoding: .utf8)
        let script = ScratchDirectory.current.appendingPathComponent("terminal.py")
        try """
            import os, pty, select, signal, subprocess, sys, time
            gust, directory, cache = sys.argv[1:4]
            master, slave = pty.openpty()
            process = subprocess.Popen([gust, 'dev', directory, '--port', '0'], stdin=slave, stdout=slave, stderr=slave,
                                       env=dict(os.environ, XDG_CACHE_HOME=cache), start_new_session=True)
            os.close(slave)
            seen = b''
            def until(marker, count=1, seconds=120):
                global seen
                deadline = time.time() + seconds
                while seen.count(marker) < count and time.time() < deadline:
                    if select.select([master], [], [], 0.2)[0]:
                        try:
                            chunk = os.read(master, 65536)
                        except OSError:
                            break
                        if not chunk:
                            break
                        seen += chunk
            try:
                until(b'Keys: s lists')
                os.write(master, b's')
                until(b'2  tidy')
                os.write(master, b'1')
                until(b'schedule tick ran (')
                # The schedule's own output comes through the app's log, which gust dev follows
                # on a poll of its own: it may land after the run's line.
                until(b'] tick ran now', seconds=30)
                os.write(master, b'r')
                until(b'schedule tick ran (', count=2)
                os.write(master, b'9')
                until(b'No schedule 9')
            finally:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                until(b'Stopping', seconds=5)
                sys.stdout.buffer.write(seen)
            """.write(to: script, atomically: true, encoding: .utf8)
        let cache = ScratchDirectory.current.appendingPathComponent("cache")
        let ran = try Command.run("python3", [script.path, GustBinaries.gust, directory.path, cache.path], timeout: 400)
        defer {
            // gust dev stops its gustd; should it not have, its PID is in the dev home.
            let dev = cache.appendingPathComponent("gust/dev")
            for home in (try? FileManager.default.contentsOfDirectory(atPath: dev.path)) ?? [] {
                let pidFile = dev.appendingPathComponent(home).appendingPathComponent("gustd.pid")
                if let text = try? String(contentsOf: pidFile, encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
                    (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8))?.contains("gustd") == true
                {
                    kill(pid, SIGKILL)
                }
            }
        }
        let shown = ran.stdout.replacingOccurrences(of: "\r\n", with: "\n")
        #expect(ran.status == 0, "\(ran.output)")
        #expect(shown.contains("Keys: s lists the schedules"), "\(shown)")
        #expect(shown.contains("1  tick  every 1h") && shown.contains("2  tidy  cron @daily"), "\(shown)")
        #expect(shown.contains("Running schedule tick now"), "\(shown)")
        #expect(shown.contains("[schedule tick] tick ran now"), "the schedule's own output: \(shown)")
        #expect(shown.components(separatedBy: "schedule tick ran (").count - 1 == 2, "1, then r: \(shown)")
        #expect(shown.contains("No schedule 9"), "\(shown)")
        #expect(!shown.contains("tidy ran"), "\(shown)")
    }

    @Test(.scratchDirectory) func hostileDirectoriesAndArguments() throws {
        let notThere = try Command.run(GustBinaries.gust, ["dev", "/nonexistent/\u{1b}[31mred", "--port", "0"], environment: ["XDG_CACHE_HOME": ScratchDirectory.current.path])
        #expect(notThere.status != 0 && notThere.output.contains("is not a directory") && !notThere.output.contains("\u{1b}"), "\(notThere.output)")
        let empty = ScratchDirectory.current.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let nothing = try Command.run(GustBinaries.gust, ["dev", empty.path, "--port", "0"], environment: ["XDG_CACHE_HOME": ScratchDirectory.current.path], timeout: 120)
        #expect(nothing.status != 0 && nothing.output.contains("No buildpack recognised this app"), "\(nothing.output)")
        let badOp = try Command.run(GustBinaries.gust, ["call", "--dev", "../x", "{}"])
        #expect(badOp.status != 0 && badOp.output.contains("is not an op name"), "\(badOp.output)")
        let noDev = try Command.run(GustBinaries.gust, ["call", "--dev", "--dir", empty.path, "x"], environment: ["XDG_CACHE_HOME": ScratchDirectory.current.path])
        #expect(noDev.status != 0 && noDev.output.contains("No gust dev is running"), "\(noDev.output)")
    }
}

/// The app name gust dev gives a directory, as `DevWorkspace.appName` makes it.
enum DevWorkspaceName {
    static func of(_ directory: URL) -> String { directory.lastPathComponent.lowercased().replacingOccurrences(of: " ", with: "-") }
}
