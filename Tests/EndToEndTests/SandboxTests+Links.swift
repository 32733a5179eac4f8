import Foundation
import GustCore
import GustTesting
import Testing

/// An app's code wrote in its socket directory (`/run/gust/…` inside, `GUST_HOME/run/instances/…`
/// outside), as a release recorded before 2026-12-07 still can (its runtime binds its own socket;
/// since then the directory is read-only). Until 2026-12-06 gustd connected to an instance by that
/// path: an app that replaced its `instance.sock` with a link to `../../gustd.sock` (relative, so it
/// resolves on the host) and then closed gustd's connections had its callers' next requests sent to
/// gustd's admin API, with the caller's own path. Same unprivileged user and subordinate range as
/// the other `SandboxTests`.
extension SandboxTests {
    static let linkingApp = """
        import gust, os, socket, threading, time

        @gust.handler('/v1/status')
        def status(request):
            return 'the app itself\\n'

        def drop_connections():
            # Every connected Unix socket of this process (gustd's to it among them), shut down.
            time.sleep(0.3)
            for name in os.listdir('/proc/self/fd'):
                try:
                    held = socket.socket(fileno=os.dup(int(name)))
                except OSError:
                    continue
                try:
                    if held.family == socket.AF_UNIX and not held.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                        held.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                finally:
                    os.close(held.detach())

        @gust.op('link')
        def link():
            path = os.environ['GUST_SOCKET']
            depth = path[len('/run/gust/'):].count('/')  # 0: the instance's own directory; 1: a fork's
            try:
                os.rename(path, path + '.real')
            except OSError as error:
                return {'refused': error.errno}
            os.symlink('../' * (depth + 2) + 'gustd.sock', path)
            threading.Thread(target=drop_connections).start()
            return {'linked': path, 'to': os.readlink(path)}
        """

    @Test(.scratchDirectory) func aLinkAnAppPutsInItsSocketDirectoryIsNeverFollowed() throws {
        guard let setup = try Self.prepareUser() else { return }
        let root = ScratchDirectory.current
        let (home, installed) = try Self.prepareHome(setup, in: root, apps: ["dogs", "evil"])
        let gustd = try GustdProcess(home: home, user: Self.user, executable: installed.gustd)
        defer { gustd.stop() }
        let dogs = try setup.workspace(root, "dogs", files: ["__init__.py": "import gust\n\n@gust.op('bark')\ndef bark():\n    return 'woof'\n"])
        #expect(try setup.push(dogs, to: home.repository(try AppName("dogs")).path).status == 0)
        let evil = try setup.workspace(root, "evil", files: ["__init__.py": Self.linkingApp])
        let pushed = try setup.push(evil, to: home.repository(try AppName("evil")).path)
        #expect(pushed.status == 0, "\(pushed.output)")
        let before = try HTTPClient.request(port: gustd.port, "GET", "/apps/evil/v1/status")
        #expect(before.status == 200 && before.text == "the app itself\n", "\(before.text)")

        // Read-only now: the link cannot even be made.
        let refused = try HTTPClient.request(port: gustd.port, "POST", "/apps/evil/_/functions/link")
        #expect(refused.status == 200 && refused.json?["refused"] as? Int == Int(EROFS), "\(refused.text)")

        // A release recorded before gustd bound sockets: its directory stays writable. A config change
        // reuses the artifact, and its runtime: the new live release, and its instance, are so too.
        let store = home.database.path
        let marked = try setup.run([
            "/usr/bin/python3", "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('UPDATE releases SET passes_listener = 0'); c.commit()",
            store,
        ])
        #expect(marked.status == 0, "\(marked.output)")
        let set = try setup.run([installed.gust, "config", "set", "evil", "AGAIN=1", "--home", home.path])
        #expect(set.status == 0, "\(set.output)")
        let linked = try HTTPClient.request(port: gustd.port, "POST", "/apps/evil/_/functions/link")
        #expect(linked.status == 200 && linked.json?["linked"] != nil, "\(linked.text)")
        usleep(800_000)  // its connections dropped
        // However many calls follow, none reaches the admin API (whose status names every app).
        for _ in 0..<6 {
            let call = try HTTPClient.request(port: gustd.port, "GET", "/apps/evil/v1/status")
            #expect(!call.text.contains("dogs"), "the admin API answered through the app's link: \(call.status) \(call.text)")
            usleep(200_000)
        }
        #expect(try HTTPClient.request(port: gustd.port, "POST", "/apps/dogs/_/functions/bark").status == 200)
        #expect(kill(gustd.pid, 0) == 0, "gustd is up")
    }
}
