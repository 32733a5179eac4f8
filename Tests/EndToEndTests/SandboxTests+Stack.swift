import Foundation
import GustCore
import GustTesting
import Testing

/// Stacks as a server runs them: gustd and gust-receive as an unprivileged user with a subordinate
/// range, so the build and the instance run as the app's own uid (the sandbox's `setpriv` path), on
/// a stack root owned by root. In SandboxTests' suite: it shares its user and uid range, one test at a time.
extension SandboxTests {
    @Test(.scratchDirectory) func anAppsOwnUidBuildsAndRunsOnAStack() throws {
        guard let setup = try Self.prepareUser() else { return }
        let root = ScratchDirectory.current
        let (home, installed) = try Self.prepareHome(setup, in: root, apps: ["cats"])
        let trixie = try StackCache.install(["trixie"], into: home)[0]
        let gustd = try GustdProcess(home: home, user: Self.user, executable: installed.gustd)
        defer { gustd.stop() }
        let cats = try setup.workspace(root, "cats", files: [
            "__init__.py": """
                import os, subprocess, sys
                import gust

                @gust.op('where')
                def where():
                    return {'uid': os.getuid(), 'python': '%d.%d.%d' % sys.version_info[:3],
                            'os': open('/etc/os-release').read()}
                """,
            "requirements.txt": "\n",
        ])
        let pushed = try setup.push(cats, to: home.repository(try AppName("cats")).path)
        #expect(pushed.status == 0, "\(pushed.output)")
        #expect(pushed.output.contains("Stack trixie@1"), "\(pushed.output)")
        let answer = try HTTPClient.request(port: gustd.port, "POST", "/apps/cats/_/functions/where")
        #expect(answer.status == 200, "\(answer.text)\n\(gustd.logText)")
        let json = try #require(answer.json, "\(answer.text)")
        #expect(json["python"] as? String == trixie.python)
        #expect((json["os"] as? String)?.contains("trixie") == true, "\(json)")
        #expect(json["uid"] as? Int == 1000, "the app uid inside the sandbox")
        #expect(Self.instance(uid: Self.rangeStart + 1, in: home) != nil, "the instance runs as the app's own host uid")
    }
}
