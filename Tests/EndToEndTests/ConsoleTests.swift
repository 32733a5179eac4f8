import Foundation
import GustCore
import GustTesting
import Testing

/// `gustd --console`: a real gustd with pushed sample apps, and the console driven in a real
/// headless Chromium by Selenium (Tests/Browser/console_test.py): sign-in, the overview, a
/// rollback, a config edit, the live log fed by the op form, a record edit refused by its
/// before-hook, a scoped token, CSRF, and a hostile app whose output must stay text; then steering
/// (scale that starts an instance, limits, an app token made and revoked, a domain added and
/// removed), the charts, and a session that outlives a gustd restart.
/// Screenshots of each page land in .build/console-screenshots.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct ConsoleTests {
    static let hostile = ["<script>alert(1)</script>", "</script><img src=x onerror=alert(1)>"]

    static func cats(_ version: String) -> String {
        """
        import os
        import gust

        @gust.op('version')
        def version():
            return '\(version) ' + os.environ.get('GREETING', 'hello')

        @gust.op('shout')
        def shout(text='meow'):
            print(text)
            return {'printed': text}

        @gust.before_save('cat')
        def check(record, original):
            if record.get('name') == 'Rex':
                raise gust.Error('Rex is not a cat name', code=400)
            record['checked'] = True
            return record

        """
    }

    static let evil = """
        import gust

        SCRIPT = '\(hostile[0])'
        IMAGE = '\(hostile[1])'

        @gust.op(SCRIPT)
        def script_op():
            return SCRIPT

        @gust.op(IMAGE)
        def image_op():
            return IMAGE

        @gust.op('shout')
        def shout():
            print(SCRIPT)
            print(IMAGE)
            return {'html': IMAGE}

        """

    /// The console's port, once its listener has written it (it may come a moment after the public one's).
    static func consolePort(_ home: GustHome) throws -> Int {
        let file = home.run.appendingPathComponent("gustd.console")
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let text = try? String(contentsOf: file, encoding: .utf8),
                let port = Int(text.split(separator: ":").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "")
            {
                return port
            }
            usleep(50_000)
        }
        throw GustError("gustd wrote no \(file.path) within 30 s")
    }

    @Test(.scratchDirectory) func theConsoleInARealHeadlessChromium() throws {
        for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver", "/usr/bin/python3"] {
            try #require(FileManager.default.isExecutableFile(atPath: tool), "\(tool) is missing: run scripts/install-deps.sh")
        }
        let fixture = try PushFixture(gustdArguments: ["--console", "127.0.0.1:0"])
        let home = fixture.home

        // cats: v1 and v2 (the rollback's target and the live release), a record its hook checks.
        let cats = try fixture.workspace("cats")
        for version in ["one", "two"] {
            try cats.write("__init__.py", Self.cats(version))
            _ = try cats.commit("Cats \(version)")
            let push = try cats.push(to: fixture.remote)
            try #require(push.status == 0, "\(push.output)")
        }
        let appToken = try GustBinaries.gust(home, ["tokens", "create", "cats"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let created = try fixture.call("POST", "/_/records/cat", body: #"{"name": "Tom"}"#, headers: ["X-Auth-Token": appToken])
        try #require(created.status == 201, "\(created.text)")
        let recordID = try #require(created.json?["_id"] as? String)

        // dogs: another app, which a token scoped to cats must not reach.
        try #require(GustBinaries.gust(home, ["apps", "create", "dogs"]).status == 0)
        let dogs = try fixture.workspace("dogs")
        try dogs.write("__init__.py", "import gust\n\n@gust.op('bark')\ndef bark():\n    return 'woof'\n")
        _ = try dogs.commit("Dogs")
        try #require(try dogs.push(to: home.repository(try AppName("dogs")).path).status == 0)

        // evil: function names, log lines and record fields carrying markup.
        try #require(GustBinaries.gust(home, ["apps", "create", "evil"]).status == 0)
        let evil = try fixture.workspace("evil")
        try evil.write("__init__.py", Self.evil)
        _ = try evil.commit("Evil")
        let evilPush = try evil.push(to: home.repository(try AppName("evil")).path)
        try #require(evilPush.status == 0, "\(evilPush.output)")
        #expect(try HTTPClient.request(port: fixture.port, "POST", "/apps/evil/_/functions/shout", body: "{}").status == 200)
        let evilToken = try GustBinaries.gust(home, ["tokens", "create", "evil"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let fields = try String(decoding: JSONSerialization.data(withJSONObject: ["name": Self.hostile[1], "note": Self.hostile[0]]), as: UTF8.self)
        let hostileRecord = try HTTPClient.request(
            port: fixture.port, "POST", "/apps/evil/_/records/cat", headers: ["X-Auth-Token": evilToken], body: fields
        )
        try #require(hostileRecord.status == 201, "\(hostileRecord.text)")
        let hostileID = try #require(hostileRecord.json?["_id"] as? String)

        let admin = try GustBinaries.gust(home, ["tokens", "create", "--console", "--description", "browser test"])
        try #require(admin.status == 0, "\(admin.output)")
        let scoped = try GustBinaries.gust(home, ["tokens", "create", "--console", "--app", "cats"])
        try #require(scoped.status == 0, "\(scoped.output)")
        let consolePort = try Self.consolePort(home)
        let screenshots = GustBinaries.sourceRoot.appendingPathComponent(".build/console-screenshots")
        let sessionFile = home.root.deletingLastPathComponent().appendingPathComponent("console-session")
        // Chromium leaves its singleton directory (org.chromium.Chromium.*) in TMPDIR: the scratch's, not /tmp.
        let browserTemporary = ScratchDirectory.current.appendingPathComponent("browser-tmp")
        try FileManager.default.createDirectory(at: browserTemporary, withIntermediateDirectories: true)
        let browserEnvironment = ["TMPDIR": browserTemporary.path]

        let browser = try Command.run("/usr/bin/python3", [
            GustBinaries.sourceRoot.appendingPathComponent("Tests/Browser/console_test.py").path,
            "--url", "http://127.0.0.1:\(consolePort)", "--app-url", "http://127.0.0.1:\(fixture.port)/apps/cats/_/functions",
            "--admin-token", admin.stdout.trimmingCharacters(in: .whitespacesAndNewlines),
            "--scoped-token", scoped.stdout.trimmingCharacters(in: .whitespacesAndNewlines),
            "--app", "cats", "--other-app", "dogs", "--hostile-app", "evil", "--record-type", "cat", "--record-id", recordID,
            "--hostile-record-id", hostileID, "--screenshots", screenshots.path, "--session-out", sessionFile.path,
        ], environment: browserEnvironment, timeout: 900)
        #expect(browser.status == 0, "\(browser.output)")
        #expect(browser.stdout.contains("19 passed, 0 failed"), "\(browser.output)")

        // What the console steered took effect in gustd and the store, as the CLI would have.
        let ps = try GustBinaries.gust(home, ["ps", "cats", "--json"])
        let instances = (try? JSONSerialization.jsonObject(with: Data(ps.stdout.utf8))) as? [[String: Any]] ?? []
        #expect(instances.filter { !["starting", "draining", "stopping", "zygote"].contains($0["state"] as? String ?? "") }.count == 2, "\(ps.output)")
        let limits = try GustBinaries.gust(home, ["limits", "cats", "--json"])
        #expect(limits.stdout.contains("314572800"), "\(limits.output)")  // 300M
        let steered = try Store(home: home).activity(app: try AppName("cats"), limit: 50).filter { $0.source == "console" }.map(\.action)
        for action in ["scale", "limits", "token create", "token revoke", "domain add", "domain remove"] {
            #expect(steered.contains(action), "\(action) not in \(steered)")
        }

        // gustd restarts: the browser's session still signs it in (sessions are in the store).
        fixture.gustd?.stop()
        try? FileManager.default.removeItem(at: home.run.appendingPathComponent("gustd.console"))
        try fixture.gustd?.start()
        let restartedPort = try Self.consolePort(home)
        let after = try Command.run("/usr/bin/python3", [
            GustBinaries.sourceRoot.appendingPathComponent("Tests/Browser/console_test.py").path,
            "--url", "http://127.0.0.1:\(restartedPort)", "--app-url", "http://127.0.0.1:\(fixture.port)/apps/cats/_/functions",
            "--admin-token", "-", "--scoped-token", "-", "--app", "cats", "--other-app", "dogs", "--hostile-app", "evil",
            "--record-type", "cat", "--record-id", recordID, "--hostile-record-id", hostileID, "--screenshots", screenshots.path,
            "--session-in", sessionFile.path,
        ], environment: browserEnvironment, timeout: 300)
        #expect(after.status == 0 && after.stdout.contains("1 passed, 0 failed"), "\(after.output)")

        // The server recorded who did what, from where.
        let activity = try Store(home: home).activity(app: try AppName("cats"))
        #expect(activity.contains { $0.action == "push" && $0.source == "push" }, "\(activity)")
        #expect(activity.contains { $0.action == "rollback" && $0.source == "console" && $0.actor.contains("browser test") }, "\(activity)")
        #expect(activity.contains { $0.action == "config" && $0.source == "console" && $0.detail.contains("GREETING") }, "\(activity)")
        #expect(activity.contains { $0.action == "record edit" && $0.source == "console" }, "\(activity)")

        // And what the CLI changes, as the CLI's user.
        #expect(try GustBinaries.gust(home, ["scale", "cats", "--max", "3"]).status == 0)
        #expect(try GustBinaries.gust(home, ["rollback", "cats"]).status == 0)
        let cli = try Store(home: home).activity(app: try AppName("cats"), limit: 2)
        #expect(cli.map(\.action) == ["rollback", "scale"] && cli.allSatisfy { $0.source == "cli" }, "\(cli)")
    }

    @Test(.scratchDirectory) func theConsoleIsOffUnlessAskedForAndItsSessionsDieWithTheirToken() throws {
        let fixture = try PushFixture()
        #expect(!FileManager.default.fileExists(atPath: fixture.home.run.appendingPathComponent("gustd.console").path))
        fixture.gustd?.stop()

        let withConsole = try GustdProcess(home: fixture.home, arguments: ["--console", "127.0.0.1:0"])
        defer { withConsole.stop() }
        let port = try Self.consolePort(fixture.home)
        let secret = try GustBinaries.gust(fixture.home, ["tokens", "create", "--console"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        let login = try HTTPClient.request(port: port, "GET", "/login")
        let loginCSRF = try #require(login.headers["set-cookie"]?.split(separator: ";").first?.split(separator: "=").last.map(String.init))
        let signIn = try HTTPClient.request(
            port: port, "POST", "/login", headers: ["Content-Type": "application/x-www-form-urlencoded", "Cookie": "gust_login=\(loginCSRF)"],
            body: "csrf=\(loginCSRF)&token=\(secret)"
        )
        #expect(signIn.status == 303)
        let cookie = try #require(signIn.headers["set-cookie"])
        #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"))
        let session = try #require(cookie.split(separator: ";").first.map(String.init))
        #expect(try HTTPClient.request(port: port, "GET", "/", headers: ["Cookie": session]).status == 200)

        #expect(try GustBinaries.gust(fixture.home, ["tokens", "revoke", "--console", "1"]).status == 0)
        let after = try HTTPClient.request(port: port, "GET", "/", headers: ["Cookie": session])
        #expect(after.status == 303 && after.headers["location"] == "/login", "a revoked token's session still works")
    }
}
