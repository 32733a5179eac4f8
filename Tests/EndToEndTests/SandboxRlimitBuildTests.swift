import Foundation
import GustCore
import GustTesting
import Testing

/// Where gustd has no cgroup it may use (here: the unprivileged test user without the installer's
/// cgroup step), a build's compile still has a memory and a process bound: rlimits, the last
/// resort (`BuildRlimits`). Its `setup.py` sees them, a fork past the build's pids limit is
/// refused, and a push whose `setup.py` allocates 4 GB, or forks until refused, fails naming the limit.
extension SandboxTests {
    @Test(.scratchDirectory) func withoutACgroupABuildStillHasAMemoryAndAProcessBound() throws {
        guard let setup = try Self.prepareUser() else { return }
        let root = ScratchDirectory.current
        let (home, installed) = try Self.prepareHome(setup, in: root, apps: ["evil"])
        let gustd = try GustdProcess(
            home: home, arguments: ["--cgroup-root", "gust-none-" + UUID().uuidString.prefix(8).lowercased(), "--memory-limit", "128M", "--pids-limit", "64"],
            user: Self.user, executable: installed.gustd
        )
        defer { gustd.stop() }
        #expect(gustd.logText.contains("Limits: rlimits only"), "\(gustd.logText)")

        let evil = try setup.workspace(root, "evil", files: [
            "__init__.py": """
                import json, os, gust

                @gust.op('build')
                def build():
                    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'build_bounds.json')) as f:
                        return json.load(f)
                """,
            "requirements.txt": "./evilpkg\n",
            "evilpkg/setup.py": """
                import json, os, resource, time
                root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
                if os.path.exists(os.path.join(root, 'ALLOCATE')):
                    hog = bytearray(4 << 30)
                children, refused = [], None
                for _ in range(10000):
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
                if os.path.exists(os.path.join(root, 'FORKS')):
                    raise OSError(refused)
                results = {
                    'address_space': resource.getrlimit(resource.RLIMIT_AS)[0],
                    'processes': resource.getrlimit(resource.RLIMIT_NPROC)[0],
                    'forked': len(children), 'refused': refused,
                }
                with open(os.path.join(root, 'build_bounds.json'), 'w') as f:
                    json.dump(results, f)
                from setuptools import setup
                setup(name='evilpkg', version='1.0', py_modules=[])
                """,
        ])
        let remote = home.repository(try AppName("evil")).path
        let pushed = try setup.push(evil, to: remote)
        #expect(pushed.status == 0, "\(pushed.output.suffix(3000))")
        let answer = try HTTPClient.request(port: gustd.port, "POST", "/apps/evil/_/functions/build")
        #expect(answer.status == 200, "\(answer.text)")
        let bounds = answer.json?["result"] as? [String: Any] ?? answer.json ?? [:]
        // The build's limits: the app's, raised to Build.buildFloor (1 GB, 256 processes); address space twice the memory.
        #expect(bounds["address_space"] as? Int == 2 << 30, "\(bounds)")
        #expect(bounds["processes"] as? Int == 256, "\(bounds)")
        let forked = bounds["forked"] as? Int ?? -1
        #expect(forked >= 0 && forked < 256, "\(bounds)")
        #expect((bounds["refused"] as? String)?.contains("Resource temporarily unavailable") == true, "\(bounds)")

        for (file, refusal) in [
            ("ALLOCATE", "The build ran out of memory: an allocation failed at its address-space limit (2 GB, for its 1 GB memory limit"), ("FORKS", "The build failed after reaching its process limit (256 processes"),
        ] {
            try "yes\n".write(to: evil.appendingPathComponent(file), atomically: true, encoding: .utf8)
            // A new requirements.txt: the buildpack reuses the app's environment while it is unchanged.
            try "./evilpkg\n# \(file)\n".write(to: evil.appendingPathComponent("requirements.txt"), atomically: true, encoding: .utf8)
            _ = try Command.run("chown", ["-R", "\(Self.user):\(Self.user)", evil.path])
            _ = try setup.run(["git", "add", "-A"], in: evil)
            _ = try setup.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", file], in: evil)
            let refused = try setup.push(evil, to: remote)
            #expect(refused.status != 0, "\(refused.output.suffix(3000))")
            #expect(refused.output.contains(refusal), "\(refused.output.suffix(3000))")
            try FileManager.default.removeItem(at: evil.appendingPathComponent(file))
            _ = try setup.run(["git", "add", "-A"], in: evil)
            _ = try setup.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "without \(file)"], in: evil)
        }
        #expect(try HTTPClient.request(port: gustd.port, "POST", "/apps/evil/_/functions/build").status == 200, "v1 still serves")
    }
}
