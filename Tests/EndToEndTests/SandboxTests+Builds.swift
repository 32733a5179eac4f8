import Foundation
import GustCore
import GustTesting
import Testing

/// Builds are gustd's (issue 12, item 3): a push's `bin/detect`, `bin/compile` and `bin/release`
/// are started by gustd, in the app's sandbox and in gustd's cgroup tree, not by the git hook;
/// the hook only relays their lines, and a push interrupted stops its build. Same unprivileged
/// user and subordinate range as the other `SandboxTests`.
extension SandboxTests {
    /// gustd is put in a cgroup of its own in a hierarchy it does not manage (`freezer`, as systemd
    /// puts gust.service in one), and the Python buildpack's detect and release are wrapped in
    /// probes. The app's `setup.py` waits in a marked `sleep`, whose host parent chain and cgroups
    /// the test reads from outside (inside, the sandbox's cgroup namespace shows only `/`): they
    /// lead to gustd, not to gust-receive. It then leaves a process behind, which release's probe
    /// must not find, even dying.
    @Test(.scratchDirectory) func aBuildIsStartedByGustdInItsCgroupTreeWithDetectAndReleaseSandboxed() throws {
        guard let setup = try Self.prepareUser() else { return }
        let root = ScratchDirectory.current
        let (home, installed) = try Self.prepareHome(setup, in: root, apps: ["cats"])
        try Self.installProbes(in: root.appendingPathComponent("gust/buildpacks/python/bin"), home: home)
        // The installer's delegation: gustd's cgroup under each hierarchy is the gust user's.
        let cgroupRoot = "gust-builds-" + UUID().uuidString.prefix(8).lowercased()
        try Self.delegateCgroups(cgroupRoot)
        let gustd = try GustdProcess(home: home, arguments: ["--cgroup-root", cgroupRoot], user: Self.user, executable: installed.gustd)
        let freezer: URL?
        do { freezer = try Self.ownCgroup(for: gustd.pid, controller: "freezer") } catch { gustd.stop(); throw error }
        // Removed once gustd has stopped: a cgroup with gustd still in it is busy (they were left behind).
        defer {
            gustd.stop()
            if let freezer { rmdir(freezer.path) }
        }

        let token = "gust-build-probe-" + UUID().uuidString.prefix(8).lowercased()
        let cats = try setup.workspace(root, "cats", files: [
            "__init__.py": "import gust\n\n@gust.op('meow')\ndef meow():\n    return 'meow'\n",
            "requirements.txt": "./probe\n",
            "probe/setup.py": """
                import os, subprocess, time
                root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the build directory
                marker = os.path.join(root, 'probed')
                if not os.path.exists(marker):  # pip may run setup.py more than once
                    open(marker, 'w').close()
                    # The test finds this process by its name, reads who started it, and ends it.
                    subprocess.run(['\(token)', '300'], executable='/bin/sleep')
                    # Left behind by compile: a process holding 200 MB, slow to go once killed,
                    # which release must not run beside (its probe looks).
                    held = os.path.join(root, 'held')
                    subprocess.Popen(['/usr/bin/python3', '-c', f'held = b"x" * (200 << 20); open({held!r}, "w").close(); import time; time.sleep(300)'],
                                     start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    while not os.path.exists(held):
                        time.sleep(0.02)
                from setuptools import setup
                setup(name='probe', version='1.0', py_modules=[])
                """,
        ])
        let push = try BackgroundCommand(
            "/usr/bin/setpriv", ["--reuid=\(Self.user)", "--regid=\(Self.user)", "--init-groups", "--", "git", "-C", cats.path, "push",
                                 home.repository(try AppName("cats")).path, "main"],
            outputIn: root, environment: ["HOME": "/tmp", "GIT_CONFIG_NOSYSTEM": "1"]
        )
        defer { push.stop() }
        let sleeper = try #require(ProcessTable.waitForProcess(named: token, seconds: 300), "setup.py's sleep started: \(push.output)")
        let chain = ProcessTable.ancestors(of: sleeper)
        let cgroups = (try? String(contentsOfFile: "/proc/\(sleeper)/cgroup", encoding: .utf8)) ?? ""
        kill(sleeper, SIGKILL)
        #expect(chain.contains(gustd.pid), "gustd (\(gustd.pid)) started the build: \(chain.map { "\($0) \(ProcessTable.name(of: $0))" })")
        #expect(!chain.map(ProcessTable.name(of:)).contains("gust-receive"), "\(chain.map { "\($0) \(ProcessTable.name(of: $0))" })")
        #expect(push.waitForOutput(upTo: 300) { $0.contains("v1 is live") || $0.contains("rejected") }, "\(push.output)")
        #expect(push.output.contains("v1 is live"), "\(push.output)")

        // detect and release saw nothing of GUST_HOME, as the app's uid in the sandbox.
        #expect(push.output.contains("Probe sqlite=refused keys=refused home=refused uid=1000 app app detected"), "\(push.output)")
        // compile's processes are in gustd's cgroups: their own memory cgroup under gustd's root, and
        // gustd's own in the hierarchy gustd does not manage.
        #expect(cgroups.contains(":memory:/\(gustd.cgroupRoot)/cats/build-"), "\(cgroups)")
        if let freezer {
            #expect(cgroups.contains(":freezer:/\(freezer.lastPathComponent)\n"), "\(cgroups)")
        } else {
            print("SandboxTests: the freezer hierarchy is not mounted; the build's cgroup checked in memory only")
        }
    }

    /// A build that leaves a directory nobody but root may enter (mode 0000, a file inside), and one
    /// that may be read but not written (0500), and fails: once the sandbox has given the tree back
    /// to gustd's uid, gustd (not root here) gives the directories back to itself and removes them
    /// with the rest. They stayed, with all they held, build after build: a disk filled by failed
    /// pushes.
    @Test(.scratchDirectory) func aLockedDirectoryABuildLeavesIsRemovedWithItsWorkspace() throws {
        guard let setup = try Self.prepareUser() else { return }
        let root = ScratchDirectory.current
        let (home, installed) = try Self.prepareHome(setup, in: root, apps: ["cats"])
        let gustd = try GustdProcess(home: home, user: Self.user, executable: installed.gustd)
        defer { gustd.stop() }
        let cats = try setup.workspace(root, "cats", files: [
            "__init__.py": "import gust\n",
            "requirements.txt": "./locker\n",
            "locker/setup.py": """
                import os
                root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the build directory
                inner = os.path.join(root, 'locked', 'inner')
                os.makedirs(inner)
                with open(os.path.join(inner, 'left.bin'), 'wb') as f:
                    f.write(b'x' * (1 << 20))
                os.chmod(inner, 0)
                os.chmod(os.path.dirname(inner), 0)
                # Readable but not writable: opened fine, and nothing in it could be unlinked.
                readonly = os.path.join(root, 'readonly', 'inner')
                os.makedirs(readonly)
                with open(os.path.join(readonly, 'kept.bin'), 'wb') as f:
                    f.write(b'x' * (1 << 20))
                os.chmod(readonly, 0o500)
                os.chmod(os.path.dirname(readonly), 0o555)
                raise SystemExit('locked it and failed')
                """,
        ])
        let push = try setup.push(cats, to: home.repository(try AppName("cats")).path)
        #expect(push.status != 0, "\(push.output)")
        #expect(Self.buildDirectories(in: home).isEmpty, "left in GUST_HOME/tmp: \(Self.buildDirectories(in: home))")
        #expect(kill(gustd.pid, 0) == 0)
    }

    /// A push interrupted as ctrl-C does (SIGINT to git push's process group, its hook with it)
    /// while `setup.py` runs: gustd stops the build (its processes, its cgroup), removes its build
    /// directory and records nothing; the next push builds.
    @Test(.scratchDirectory) func anInterruptedPushStopsItsBuildInGustd() throws {
        guard let setup = try Self.prepareUser() else { return }
        let root = ScratchDirectory.current
        let (home, installed) = try Self.prepareHome(setup, in: root, apps: ["cats"])
        let gustd = try GustdProcess(home: home, user: Self.user, executable: installed.gustd)
        defer { gustd.stop() }
        let token = "gust-build-hang-" + UUID().uuidString.prefix(8).lowercased()
        let cats = try setup.workspace(root, "cats", files: [
            "__init__.py": "import gust\n\n@gust.op('meow')\ndef meow():\n    return 'meow'\n",
            "requirements.txt": "./slow\n",
            "HANG": "yes\n",
            "slow/setup.py": """
                import os, subprocess
                root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
                if os.path.exists(os.path.join(root, 'HANG')):
                    subprocess.run(['\(token)', '600'], executable='/bin/sleep')
                from setuptools import setup
                setup(name='slow', version='1.0', py_modules=[])
                """,
        ])
        let remote = home.repository(try AppName("cats")).path
        // A session of its own, as a terminal's foreground job: ctrl-C reaches git push, receive-pack and the
        // hook, none of which ignores it (whatever this test's runner inherited).
        let push = try BackgroundCommand(
            "/usr/bin/setsid", ["/usr/bin/env", "--default-signal=INT", "/usr/bin/setpriv", "--reuid=\(Self.user)", "--regid=\(Self.user)", "--init-groups", "--",
                                "git", "-C", cats.path, "push", remote, "main"],
            outputIn: root, environment: ["HOME": "/tmp", "GIT_CONFIG_NOSYSTEM": "1"]
        )
        defer { push.stop() }
        let sleeper = try #require(ProcessTable.waitForProcess(named: token, seconds: 300), "setup.py's sleep started: \(push.output)")
        #expect(ProcessTable.ancestors(of: sleeper).contains(gustd.pid))
        let group = try #require(Self.hookProcessGroup(home: home), "the hook's process group")
        #expect(group != getpgrp(), "git push runs in a process group of its own")
        kill(-group, SIGINT)

        // Bounded: gustd notices within its heartbeat, then kills and cleans up.
        var gone = false
        for _ in 0..<300 where !gone {  // 30 s
            gone = kill(sleeper, 0) != 0 && Self.processes(uid: Self.rangeStart + 1, under: gustd.pid).isEmpty
                && Self.noCgroups(gustd) && Self.buildDirectories(in: home).isEmpty
            if !gone { usleep(100_000) }
        }
        #expect(kill(sleeper, 0) != 0, "setup.py's sleep was killed")
        #expect(Self.processes(uid: Self.rangeStart + 1, under: gustd.pid).isEmpty, "nothing of the app's uid runs under gustd")
        #expect(Self.noCgroups(gustd), "\(gustd.cgroupDirectories(app: "cats"))")
        #expect(Self.buildDirectories(in: home).isEmpty, "\(Self.buildDirectories(in: home))")
        #expect(kill(gustd.pid, 0) == 0, "gustd is up")
        let releases = try setup.run([installed.gust, "releases", "cats", "--json", "--home", home.path])
        #expect(!releases.stdout.contains("\"version\""), "nothing recorded: \(releases.output)")

        // The next push (without the hang) builds and serves.
        try FileManager.default.removeItem(at: cats.appendingPathComponent("HANG"))
        for step in [["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "no hang"]] {
            #expect(try setup.run(["git"] + step, in: cats).status == 0)
        }
        let pushed = try setup.push(cats, to: remote)
        #expect(pushed.status == 0, "\(pushed.output)")
        #expect(try HTTPClient.request(port: gustd.port, "POST", "/apps/cats/_/functions/meow").status == 200)
    }

    // MARK: Fixture

    /// The Python buildpack's `bin/detect` and `bin/release` wrapped in probes of what they can reach
    /// (`home`'s store, keys and listing), the originals kept beside them as `*-real`. detect names the
    /// app after what it found; release fails the build if it reached anything.
    static func installProbes(in bin: URL, home: GustHome) throws {
        let probe = """
            r() { if eval "$2" >/dev/null 2>&1; then printf '%s=READ ' "$1"; else printf '%s=refused ' "$1"; fi; }
            found="$(r sqlite "head -c1 '\(home.path)/gust.sqlite'")$(r keys "cat '\(home.path)/ssh/authorized_keys'")$(r home "ls '\(home.path)'")uid=$(id -u)"
            """
        let scripts = [
            "detect": "#!/bin/bash\n\(probe)\necho \"Probe $found app\"\nexec \"$(dirname \"$0\")/detect-real\" \"$@\"\n",
            "release": """
                #!/bin/bash
                for f in /proc/[0-9]*/stat; do read -r s < "$f" 2>/dev/null || continue; case "$s" in *"(python3)"*) echo "release beside compile's $s"; exit 1;; esac; done
                \(probe)
                case "$found" in *READ*|*uid=[!1]*) echo "release reached: $found"; exit 1;; esac
                exec "$(dirname "$0")/release-real" "$@"

                """,
        ]
        for (name, text) in scripts {
            let script = bin.appendingPathComponent(name)
            try FileManager.default.moveItem(at: script, to: bin.appendingPathComponent(name + "-real"))
            try text.write(to: script, atomically: true, encoding: .utf8)
            chmod(script.path, 0o755)
        }
    }

    /// Moves `pid` into a cgroup of its own in `controller`'s hierarchy; nil where that is not mounted.
    static func ownCgroup(for pid: Int32, controller: String) throws -> URL? {
        let mount = URL(fileURLWithPath: "/sys/fs/cgroup/\(controller)")
        guard FileManager.default.fileExists(atPath: mount.appendingPathComponent("cgroup.procs").path) else { return nil }
        let directory = mount.appendingPathComponent("gust-gustd-" + UUID().uuidString.prefix(8).lowercased())
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
        try "\(pid)\n".write(to: directory.appendingPathComponent("cgroup.procs"), atomically: false, encoding: .utf8)
        return directory
    }

    /// The process group of the hook running for `home` (git push's, as setsid made it).
    static func hookProcessGroup(home: GustHome) -> pid_t? {
        let hooks = ProcessTable.processes(where: { $0.contains { $0.contains(home.path) } }).filter { ProcessTable.name(of: $0) == "gust-receive" }
        return hooks.lazy.compactMap { ProcessTable.parentAndGroup(of: $0)?.group }.first
    }

    /// The processes running as host uid `uid` that `ancestor` started (other tests' are not).
    static func processes(uid: Int, under ancestor: Int32) -> [Int32] {
        ProcessTable.processes(ownedBy: uid).filter { ProcessTable.ancestors(of: $0).contains(ancestor) }
    }

    /// Whether `cats` has no cgroup left under gustd's root.
    static func noCgroups(_ gustd: GustdProcess) -> Bool {
        gustd.cgroupDirectories(app: "cats").values.allSatisfy { $0.isEmpty }
    }

    /// Build directories left in `GUST_HOME/tmp`.
    static func buildDirectories(in home: GustHome) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: home.tmp.path)) ?? []).filter { $0.hasPrefix("build-") }
    }
}
