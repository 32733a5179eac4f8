import Foundation
import GustCore
import GustTesting
import Testing

/// Where gustd has no cgroup it may use (the unprivileged test user without the installer's cgroup
/// step), an instance of an app with a host uid of its own still has a process bound: RLIMIT_NPROC
/// at the app's pids limit, which the kernel counts for that uid alone (`InstanceCgroup.confinement`).
/// A function's fork bomb is refused, and the app answers afterwards.
extension SandboxTests {
    @Test(.scratchDirectory) func withoutACgroupAnInstanceWithItsOwnUIDHasAProcessBound() throws {
        guard let setup = try Self.prepareUser() else { return }
        let root = ScratchDirectory.current
        let (home, installed) = try Self.prepareHome(setup, in: root, apps: ["evil"])
        let gustd = try GustdProcess(
            home: home, arguments: ["--cgroup-root", "gust-none-" + UUID().uuidString.prefix(8).lowercased(), "--pids-limit", "64"],
            user: Self.user, executable: installed.gustd
        )
        defer { gustd.stop() }
        #expect(gustd.logText.contains("Limits: rlimits only"), "\(gustd.logText)")
        #expect(gustd.logText.contains("each app as its own uid"), "\(gustd.logText)")

        // At most 200 forks: enough to pass a bound of 64, few enough not to hurt the host without one.
        let evil = try setup.workspace(root, "evil", files: [
            "__init__.py": """
                import os, resource, time, gust

                @gust.op('bomb')
                def bomb():
                    children, refused = [], None
                    for _ in range(200):
                        try:
                            pid = os.fork()
                        except OSError as error:
                            refused = str(error)
                            break
                        if pid == 0:
                            time.sleep(30)
                            os._exit(0)
                        children.append(pid)
                    for pid in children:
                        os.kill(pid, 9)
                        os.waitpid(pid, 0)
                    return {'processes': resource.getrlimit(resource.RLIMIT_NPROC)[0], 'forked': len(children), 'refused': refused}
                """,
        ])
        let pushed = try setup.push(evil, to: home.repository(try AppName("evil")).path)
        #expect(pushed.status == 0, "\(pushed.output.suffix(3000))")
        let answer = try HTTPClient.request(port: gustd.port, "POST", "/apps/evil/_/functions/bomb", timeout: 60)
        #expect(answer.status == 200, "\(answer.text)")
        let bounds = answer.json?["result"] as? [String: Any] ?? answer.json ?? [:]
        #expect(bounds["processes"] as? Int == 64, "\(bounds)")
        let forked = bounds["forked"] as? Int ?? -1
        #expect(forked >= 0 && forked < 64, "\(bounds)")
        #expect((bounds["refused"] as? String)?.contains("Resource temporarily unavailable") == true, "\(bounds)")
        #expect(try HTTPClient.request(port: gustd.port, "POST", "/apps/evil/_/functions/bomb", timeout: 60).status == 200, "the app answers again")
    }
}
