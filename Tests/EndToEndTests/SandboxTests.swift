import Foundation
import GustCore
import GustTesting
import Testing

/// A hostile app, pushed next to an honest one, with gustd and gust-receive
/// running as an unprivileged user the test creates (as root, as CI runs,
/// nothing would be proven): from a function and from its `setup.py` at build
/// time it tries to read the store, the SSH keys, the other app's release and
/// records, append to `authorized_keys`, write its own release, signal gustd
/// and the other app's instance, and reach gustd's listener and admin socket.
/// Each is refused; the other app answers throughout; gustd stays up.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct SandboxTests {
    static let user = "gust-sandbox-test"
    /// The test user's subordinate range; app number N runs as `rangeStart + N`.
    static let rangeStart = 420_000

    @Test(.scratchDirectory) func aHostileAppIsRefusedEverythingAndTheOtherAppKeepsAnswering() throws {
        guard let setup = try Self.prepareUser() else { return }
        let root = ScratchDirectory.current
        let (home, installed) = try Self.prepareHome(setup, in: root, apps: ["dogs", "evil"])
        let gustd = try GustdProcess(home: home, user: Self.user, executable: installed.gustd)
        defer { gustd.stop() }
        #expect(gustd.logText.contains("sandbox: bubblewrap, each app as its own uid from \(Self.rangeStart)"), "\(gustd.logText)")
        try Self.firewall(load: true)
        defer { try? Self.firewall(load: false) }

        // The honest app.
        let dogs = try setup.workspace(root, "dogs", files: [
            "__init__.py": "import gust\n\n@gust.op('bark')\ndef bark():\n    gust.records.save('dog', {'name': 'rex'})\n    return 'woof'\n",
        ])
        let pushedDogs = try setup.push(dogs, to: home.repository(try AppName("dogs")).path)
        #expect(pushedDogs.status == 0, "\(pushedDogs.output)")
        func dogsAnswer() throws -> Bool {
            try HTTPClient.request(port: gustd.port, "POST", "/apps/dogs/_/functions/bark").status == 200
        }
        #expect(try dogsAnswer())
        // Its instance runs as the app's own host uid (`start + 1`), as seen from outside.
        let dogsUID = Self.instance(uid: Self.rangeStart + 1, in: home)
        #expect(dogsUID != nil, "dogs' instance runs as uid \(Self.rangeStart + 1)")
        let dogsInstance = try #require(dogsUID ?? GustdProcess.recordedInstancePIDs(of: home).first)
        // Its zygote entered the app's prepared sandbox: gustd's own child (under bwrap, bwrap's), in
        // the user namespace of the app's holder, which runs under gustd.
        #expect(gustd.logText.contains("sandbox starts: each enters its app's prepared sandbox"), "\(gustd.logText)")
        let dogsZygote = Self.parent(of: dogsInstance)
        #expect(dogsZygote.flatMap(Self.parent(of:)) == gustd.pid, "the zygote \(dogsZygote ?? 0) is gustd's child")
        let holder = try #require(ZygoteTests.holderSleeper(under: gustd.pid), "dogs' holder runs under gustd")
        let userNamespace = { (pid: Int32) in try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/user") }
        #expect(userNamespace(dogsInstance) != nil && userNamespace(dogsInstance) == userNamespace(holder))

        // The hostile app: its targets are the real paths and pids of this run.
        let targets: [String: Any] = [
            "home": home.path, "gustd": gustd.pid, "port": gustd.port, "other_instance": dogsInstance,
            "other_release": home.release(try AppName("dogs"), version: 1).path,
            "other_records": home.root.appendingPathComponent("data/dogs/records.sqlite").path,
        ]
        let evil = try setup.workspace(root, "evil", files: [
            "targets.json": String(decoding: try JSONSerialization.data(withJSONObject: targets), as: UTF8.self),
            "attack.py": Self.attack,
            "__init__.py": """
                import json, os, gust, attack

                here = os.path.dirname(os.path.abspath(__file__))  # /app in its sandbox

                @gust.op('attack')
                def run():
                    with open(os.path.join(here, 'build_attack.json')) as f:
                        at_build = json.load(f)
                    with open(os.path.join(here, 'targets.json')) as f:
                        targets = json.load(f)
                    return {'run': attack.attack(targets, here, at_build=False), 'build': at_build}
                """,
            "requirements.txt": "./evilpkg\n",
            "evilpkg/setup.py": """
                import json, os, sys
                root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the build directory
                sys.path.insert(0, root)
                import attack
                results = attack.attack(json.load(open(os.path.join(root, 'targets.json'))), root, at_build=True)
                with open(os.path.join(root, 'build_attack.json'), 'w') as f:
                    json.dump(results, f)
                from setuptools import setup
                setup(name='evilpkg', version='1.0', py_modules=[])
                """,
        ])
        let pushedEvil = try setup.push(evil, to: home.repository(try AppName("evil")).path)
        #expect(pushedEvil.status == 0, "\(pushedEvil.output)")
        #expect(try dogsAnswer())

        let answer = try HTTPClient.request(port: gustd.port, "POST", "/apps/evil/_/functions/attack")
        #expect(answer.status == 200, "\(answer.text)")
        let results = try #require(answer.json as? [String: [String: String]], "\(answer.text)")
        for phase in ["run", "build"] {
            let tried = try #require(results[phase], "\(answer.text)")
            #expect(tried.count >= 9, "\(phase): \(tried)")
            for (attempt, outcome) in tried.sorted(by: { $0.key < $1.key }) {
                #expect(outcome.hasPrefix("refused"), "\(phase): \(attempt) → \(outcome)")
            }
            // Refused by the rule, not timed out on its way out.
            #expect(tried["reach Alibaba Cloud's metadata service"] == "refused: ConnectionRefusedError", "\(phase): \(tried)")
        }
        // Each app is its own host uid, seen from outside; the keys are untouched; all still answer.
        #expect(Self.instance(uid: Self.rangeStart + 2, in: home) != nil, "the hostile app's instance runs as uid \(Self.rangeStart + 2)")
        let keys = (try? String(contentsOfFile: home.root.appendingPathComponent("ssh/authorized_keys").path, encoding: .utf8)) ?? ""
        #expect(!keys.contains("evil"))
        #expect(try dogsAnswer())
        #expect(kill(gustd.pid, 0) == 0, "gustd is up")
        #expect(kill(dogsInstance, 0) == 0, "the other app's instance is the same one: \(gustd.logText.suffix(4000))")
    }

    /// The same from an npm `preinstall` script (a local dependency makes the buildpack run npm): it
    /// writes what it got into its cache directory, which the test reads as root afterwards.
    @Test(.scratchDirectory) func anNpmInstallScriptIsRefusedToo() throws {
        guard let setup = try Self.prepareUser() else { return }
        let root = ScratchDirectory.current
        let (home, installed) = try Self.prepareHome(setup, in: root, apps: ["dogs", "evil"])
        let gustd = try GustdProcess(home: home, user: Self.user, executable: installed.gustd)
        defer { gustd.stop() }
        try Self.firewall(load: true)
        defer { try? Self.firewall(load: false) }
        let dogs = try setup.workspace(root, "dogs", files: ["__init__.py": "import gust\n\n@gust.op('bark')\ndef bark():\n    return 'woof'\n"])
        #expect(try setup.push(dogs, to: home.repository(try AppName("dogs")).path).status == 0)
        func dogsAnswer() throws -> Bool {
            try HTTPClient.request(port: gustd.port, "POST", "/apps/dogs/_/functions/bark").status == 200
        }
        #expect(try dogsAnswer())
        let dogsInstance = try #require(Self.instance(uid: Self.rangeStart + 1, in: home))

        let targets: [String: Any] = [
            "home": home.path, "gustd": gustd.pid, "port": gustd.port, "other_instance": dogsInstance,
            "other_release": home.release(try AppName("dogs"), version: 1).path,
        ]
        let evil = try setup.workspace(root, "evil", files: [
            "targets.json": String(decoding: try JSONSerialization.data(withJSONObject: targets), as: UTF8.self),
            "attack.js": Self.nodeAttack,
            "index.js": "const gust = require('gust');\ngust.op('hello', () => 'hello');\n",
            // A local dependency (no registry needed) makes the buildpack run npm, which runs preinstall.
            "dep/package.json": #"{"name": "dep", "version": "1.0.0"}"#,
            "package.json": #"{"name": "evil", "version": "1.0.0", "dependencies": {"dep": "file:/app/dep"}, "scripts": {"preinstall": "node /app/attack.js"}}"#,
        ])
        let pushed = try setup.push(evil, to: home.repository(try AppName("evil")).path)
        #expect(pushed.status == 0, "\(pushed.output)")
        let written = try String(contentsOf: home.cache(try AppName("evil")).appendingPathComponent("attack.json"), encoding: .utf8)
        let results = try #require(try JSONSerialization.jsonObject(with: Data(written.utf8)) as? [String: String], "\(written)")
        #expect(results.count >= 7, "\(results)")
        for (attempt, outcome) in results.sorted(by: { $0.key < $1.key }) {
            #expect(outcome.hasPrefix("refused"), "npm preinstall: \(attempt) → \(outcome)")
        }
        #expect(try dogsAnswer())
        #expect(kill(gustd.pid, 0) == 0, "gustd is up")
        #expect(kill(dogsInstance, 0) == 0, "the other app's instance is the same one: \(gustd.logText.suffix(4000))")
    }

    // MARK: Fixture

    /// Runs commands as the test user.
    struct AsUser {
        let user: String
        func run(_ arguments: [String], in directory: URL? = nil) throws -> CommandResult {
            try Command.run(
                "/usr/bin/setpriv", ["--reuid=\(user)", "--regid=\(user)", "--init-groups", "--"] + arguments, in: directory,
                environment: ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "GIT_CONFIG_NOSYSTEM": "1"]
            )
        }

        func workspace(_ root: URL, _ name: String, files: [String: String]) throws -> URL {
            let directory = root.appendingPathComponent("work-\(name)")
            for (path, text) in files {
                let file = directory.appendingPathComponent(path)
                try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Self.dedent(text).write(to: file, atomically: true, encoding: .utf8)
            }
            _ = try Command.run("chown", ["-R", "\(user):\(user)", directory.path])
            for step in [["init", "-q", "-b", "main"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "push"]] {
                let result = try run(["git"] + step, in: directory)
                guard result.status == 0 else { throw GitFailure(arguments: step, result: result) }
            }
            return directory
        }

        func push(_ directory: URL, to remote: String) throws -> CommandResult {
            try run(["git", "push", remote, "main"], in: directory)
        }

        static func dedent(_ text: String) -> String {
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            let indent = lines.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.map { $0.prefix { $0 == " " }.count }.min() ?? 0
            return lines.map { String($0.dropFirst(min(indent, $0.count))) }.joined(separator: "\n") + "\n"
        }
    }

    /// A home owned by the test user in the test's 0755 directory, Gust installed beside it, and `apps`
    /// created in it by the test user's `gust`.
    static func prepareHome(_ setup: AsUser, in root: URL, apps: [String]) throws -> (GustHome, (gust: String, gustd: String)) {
        chmod(root.path, 0o755)
        let home = GustHome(path: root.appendingPathComponent("home").path)
        try FileManager.default.createDirectory(at: home.root, withIntermediateDirectories: true)
        _ = try Command.run("chown", ["\(user):\(user)", home.path])
        let installed = try install(into: root)
        for app in apps {
            let created = try setup.run([installed.gust, "apps", "create", app, "--home", home.path])
            #expect(created.status == 0, "\(created.output)")
        }
        return (home, installed)
    }

    /// Gust's executables, `buildpacks/` and `hooks/` copied into the test's own 0755 directory, as an
    /// install would lay them out: the checkout may sit where the test user cannot reach it (a clone
    /// in a 0700 `mktemp -d`), and gustd, gust-receive and the hook run as that user.
    static func install(into root: URL) throws -> (gust: String, gustd: String) {
        let share = root.appendingPathComponent("gust")
        let bin = share.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        // cp keeps each file's mode (Foundation's copy does not keep a directory's).
        let binaries = ["gust", "gust-receive", "gustd"].map { GustBinaries.directory.appendingPathComponent($0).path }
        let folders = ["buildpacks", "hooks"].map { GustBinaries.sourceRoot.appendingPathComponent($0).path }
        for (sources, target) in [(binaries, bin.path), (folders, share.path)] {
            let copied = try Command.run("cp", ["-R", "--preserve=mode"] + sources + [target])
            guard copied.status == 0 else { throw GitFailure(arguments: ["cp"], result: copied) }
        }
        let opened = try Command.run("chmod", ["-R", "go+rX", share.path])
        guard opened.status == 0 else { throw GitFailure(arguments: ["chmod"], result: opened) }
        return (bin.appendingPathComponent("gust").path, bin.appendingPathComponent("gustd").path)
    }

    /// The test user with a subordinate range, created once; nil (the test says why) where that cannot be.
    static func prepareUser() throws -> AsUser? {
        guard getuid() == 0 else {
            print("SandboxTests: skipped, creating a user needs root")
            return nil
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap"), FileManager.default.isExecutableFile(atPath: "/usr/bin/newuidmap")
        else {
            print("SandboxTests: skipped, bubblewrap or uidmap is not installed (scripts/install-deps.sh)")
            return nil
        }
        if getpwnam(user) == nil {
            let added = try Command.run("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user])
            guard added.status == 0 else { throw GitFailure(arguments: ["useradd"], result: added) }
        }
        for file in ["/etc/subuid", "/etc/subgid"] {
            let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            if !text.split(separator: "\n").contains(where: { $0.hasPrefix("\(user):") }) {
                try (text + "\(user):\(rangeStart):65536\n").write(toFile: file, atomically: true, encoding: .utf8)
            }
        }
        return AsUser(user: user)
    }

    /// The installer's egress rules for the test user's range (scripts/gust-firewall.sh), or their removal.
    static func firewall(load: Bool) throws {
        let script = GustBinaries.sourceRoot.appendingPathComponent("scripts/gust-firewall.sh").path
        let result = try Command.run("/bin/bash", [script] + (load ? ["\(rangeStart)", "65536"] : ["--remove"]))
        #expect(result.status == 0, "\(result.output)")
    }

    /// The process of this run's instances running as host uid `uid` (its pid), read from /proc as an outsider
    /// would: among the instance pids this run's gustd recorded in `home` and their descendants, never
    /// another run's instance of the same test user and uid range.
    static func instance(uid: Int, in home: GustHome) -> Int32? {
        SandboxPID.host(runningAs: uid, under: GustdProcess.recordedInstancePIDs(of: home))
    }

    /// The Node version, run by npm: writes its outcomes to the build's cache directory.
    static let nodeAttack = """
        const fs = require('fs'), net = require('net');
        const t = JSON.parse(fs.readFileSync('/app/targets.json', 'utf8'));
        const out = {};
        const attempt = (name, action) => {
          try { action(); out[name] = 'DONE'; } catch (error) { out[name] = 'refused: ' + error.code; }
        };
        attempt('read gust.sqlite', () => fs.readFileSync(t.home + '/gust.sqlite'));
        attempt('read authorized_keys', () => fs.readFileSync(t.home + '/ssh/authorized_keys'));
        attempt('append to authorized_keys', () => fs.appendFileSync(t.home + '/ssh/authorized_keys', 'ssh-ed25519 AAAA evil\\n'));
        attempt('read the other release', () => fs.readFileSync(t.other_release + '/__init__.py'));
        attempt('signal gustd', () => process.kill(t.gustd, 'SIGTERM'));
        attempt('signal the other instance', () => process.kill(t.other_instance, 'SIGKILL'));
        const reach = (name, options) => new Promise((done) => {
          const socket = net.connect(options);
          socket.setTimeout(3000, () => { out[name] = 'refused: timeout'; socket.destroy(); done(); });
          socket.on('connect', () => { out[name] = 'DONE'; socket.destroy(); done(); });
          socket.on('error', (error) => { out[name] = 'refused: ' + error.code; done(); });
        });
        (async () => {
          await reach("reach gustd's HTTP listener", {host: '127.0.0.1', port: t.port});
          await reach("reach gustd's admin socket", {path: t.home + '/run/gustd.sock'});
          fs.writeFileSync(process.cwd() + '/../../attack.json', JSON.stringify(out));
        })();
        """

    /// Each attempt: "refused: …" or "DONE" (a hole).
    static let attack = """
        import json, os, signal, socket

        def attack(t, here, at_build):
            out = {}
            def attempt(name, action):
                try:
                    action()
                    out[name] = 'DONE'
                except Exception as error:
                    out[name] = 'refused: %s' % type(error).__name__
            home = t['home']
            attempt('read gust.sqlite', lambda: open(home + '/gust.sqlite', 'rb').read(1))
            attempt('read authorized_keys', lambda: open(home + '/ssh/authorized_keys').read())
            attempt('append to authorized_keys', lambda: open(home + '/ssh/authorized_keys', 'a').write('ssh-ed25519 AAAA evil\\n'))
            attempt('read the other release', lambda: open(t['other_release'] + '/__init__.py').read())
            attempt('read the other records', lambda: open(t['other_records'], 'rb').read(1))
            attempt('read the store by its home path', lambda: os.listdir(home))
            if not at_build:
                attempt('write its own release', lambda: open(os.path.join(here, '__init__.py'), 'a').write('# evil\\n'))
                def inotify_instances():
                    # Charged to gustd's uid too, whose 128 in the host's namespace every app shares:
                    # the sandbox's own namespace bounds the app at 16.
                    import ctypes
                    libc = ctypes.CDLL(None, use_errno=True)
                    taken = []
                    try:
                        for _ in range(64):
                            fd = libc.inotify_init1(0o2000000)
                            if fd < 0:
                                raise OSError(ctypes.get_errno(), 'inotify_init1')
                            taken.append(fd)
                    finally:
                        for fd in taken:
                            os.close(fd)
                attempt('take 64 inotify instances', inotify_instances)
            attempt('signal gustd', lambda: os.kill(t['gustd'], signal.SIGTERM))
            attempt('signal the other instance', lambda: os.kill(t['other_instance'], signal.SIGKILL))
            def reach_http():
                socket.create_connection(('127.0.0.1', t['port']), timeout=3).close()
            attempt("reach gustd's HTTP listener", reach_http)
            def reach_metadata():
                # A cloud's metadata service outside the link-local range (Alibaba Cloud's): the
                # firewall refuses it at once; without the rule the connection would go out.
                socket.create_connection(('100.100.100.200', 80), timeout=3).close()
            attempt("reach Alibaba Cloud's metadata service", reach_metadata)
            def reach_admin():
                s = socket.socket(socket.AF_UNIX)
                s.connect(home + '/run/gustd.sock')
            attempt("reach gustd's admin socket", reach_admin)
            def nested_namespace():
                if os.system('unshare -U true 2>/dev/null') != 0:
                    raise PermissionError('unshare')
            attempt('make a user namespace', nested_namespace)
            return out
        """
}
