import Foundation
import GustCore
import GustTesting
import Testing

/// An instance's socket directory (`/run/gust` in its sandbox, a directory on gustd's own disk)
/// was writable by the app's code, which could fill gustd's disk through it without bound. gustd
/// binds each instance's socket now and hands it over (`GUST_LISTEN_FD`), and the directory is
/// read-only inside, for a fork of the zygote (Python) and an instance started on its own (Node).
/// A release recorded before that keeps a writable one (its runtime binds its own socket), and
/// still starts, a rollback or config change of it too.
@Suite(.timeLimit(.minutes(10)))
struct SocketDirectoryTests {
    static let python = """
        import os
        import gust

        @gust.op('fill')
        def fill():
            out = {}
            for name, where in (('own', os.path.dirname(os.environ['GUST_SOCKET'])), ('sandbox', '/run/gust')):
                path = os.path.join(where, 'gust-fill')
                try:
                    with open(path, 'wb') as f:
                        f.write(b'x' * 1024)
                    os.remove(path)
                    out[name] = 'written'
                except OSError as error:
                    out[name] = 'refused: %d' % error.errno
            return out
        """

    static let node = """
        const fs = require('fs');
        const path = require('path');
        const gust = require('gust');
        gust.op('fill', () => {
          const out = {};
          for (const [name, where] of [['own', path.dirname(process.env.GUST_SOCKET)], ['sandbox', '/run/gust']]) {
            const file = path.join(where, 'gust-fill');
            try {
              fs.writeFileSync(file, 'x'.repeat(1024));
              fs.unlinkSync(file);
              out[name] = 'written';
            } catch (error) {
              out[name] = `refused: ${error.code}`;
            }
          }
          return out;
        });
        """

    @Test(.scratchDirectory) func anAppCannotWriteInItsSocketDirectoryUnlessItsReleaseBindsItsOwnSocket() throws {
        let fixture = try PushFixture()
        guard let gustd = fixture.gustd, gustd.logText.contains("sandbox: bubblewrap") else {
            Issue.record("gustd runs without bubblewrap here: \(fixture.gustd?.logText.prefix(500) ?? "")")
            return
        }
        let push = try fixture.pushPython(Self.python)
        try #require(push.status == 0, "\(push.output)")
        func fill(_ app: String) throws -> [String: String] {
            let answer = try HTTPClient.request(port: fixture.port, "POST", "/apps/\(app)/_/functions/fill", body: "{}")
            #expect(answer.status == 200, "\(answer.text)")
            return answer.json as? [String: String] ?? [:]
        }
        // EROFS: the mount is read-only, whatever the directory's mode (here the app runs as gustd's uid).
        #expect(try fill(fixture.app) == ["own": "refused: 30", "sandbox": "refused: 30"])

        let nodePush = try fixture.pushNode(Self.node, to: "dogs")
        try #require(nodePush.status == 0, "\(nodePush.output)")
        #expect(try fill("dogs") == ["own": "refused: EROFS", "sandbox": "refused: EROFS"])

        // A release recorded before gustd bound sockets: its runtime binds its own, in a writable
        // directory. A config change reuses its artifact, and so its runtime: it stays so, and starts.
        let store = try fixture.store()
        let cats = try AppName(fixture.app)
        let live = try #require(try store.app(cats)?.liveVersion)
        try store.db.run("UPDATE releases SET passes_listener = 0 WHERE app = ? AND version = ?", [.text(fixture.app), .integer(Int64(live))])
        let set = try GustBinaries.gust(fixture.home, ["config", "set", fixture.app, "FRESH=1"])
        #expect(set.status == 0, "\(set.output)")
        let changed = try #require(try store.release(cats, version: live + 1))
        #expect(!changed.passesListener)
        #expect(try fill(fixture.app) == ["own": "written", "sandbox": "written"])
    }
}
