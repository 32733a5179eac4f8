import Foundation
import GustCore
import GustTesting
import Synchronization
import Testing

/// The floods of issue 12, by the same unprivileged gustd and gust-receive as the other
/// `SandboxTests`, with the hostile app pushed over a real sshd by a key scoped to it: from its
/// `setup.py` at build time and from its functions, it forks 10,000 processes, allocates 2 GB,
/// prints 1 GB and fills `/tmp`, under small limits (128 MB, 64 processes, a 16 MB `/tmp`, 1 MB/s
/// of logs) so that each is contained fast. A thread calls the honest app all along and counts
/// every failure; its records are counted at the end.
extension SandboxTests {
    @Test(.scratchDirectory) func aHostileAppsFloodsAreContainedAndTheOtherAppNeverFails() throws {
        guard let setup = try Self.prepareUser(), try Self.prepareLogin() else { return }
        let root = ScratchDirectory.current
        let (home, installed) = try Self.prepareHome(setup, in: root, apps: ["dogs", "evil"])
        // The installed unit's root step: gustd's cgroup under each v1 hierarchy is the gust user's.
        let cgroupRoot = "gust-flood-" + UUID().uuidString.prefix(8).lowercased()
        try Self.delegateCgroups(cgroupRoot)
        let gustd = try GustdProcess(
            home: home,
            arguments: [
                "--cgroup-root", cgroupRoot, "--memory-limit", "128M", "--pids-limit", "64", "--tmp-limit", "16M",
                "--log-rate", "1M", "--log-max", "1M", "--function-timeout", "120",
            ],
            user: Self.user, executable: installed.gustd
        )
        defer { gustd.stop() }
        #expect(gustd.logText.contains("Limits: cgroup v1"), "\(gustd.logText)")
        try Self.firewall(load: true)
        defer { try? Self.firewall(load: false) }

        // The hostile app's key is scoped to it; sshd logs it in as the gust user.
        let key = try SSHKeyPair.generate(in: root, name: "evil-key")
        let added = try setup.run([installed.gust, "keys", "add", "mallory", key.publicKey.path, "--app", "evil", "--home", home.path])
        #expect(added.status == 0, "\(added.output)")
        let sshd = try SSHServer(authorizedKeys: home.authorizedKeys, directory: root.appendingPathComponent("sshd"), login: Self.user)
        defer { sshd.stop() }

        // The honest app: each call keeps a record and writes to its own /tmp.
        let dogs = try setup.workspace(root, "dogs", files: [
            "__init__.py": """
                import gust

                @gust.op('bark')
                def bark(n):
                    with open('/tmp/bark', 'w') as f:
                        f.write(str(n))
                    gust.records.save('dog', {'n': n})
                    return 'woof'
                """,
        ])
        #expect(try setup.push(dogs, to: home.repository(try AppName("dogs")).path).status == 0)
        let caller = SteadyCaller(port: gustd.port)
        caller.start()
        defer { caller.stop() }

        // v1: at build time, setup.py forks, fills /tmp and prints 1 GB.
        let tmpName = "gust-flood-" + UUID().uuidString.prefix(8).lowercased()
        let evil = try Self.rootWorkspace(root, "evil", files: [
            "floods.py": Self.floods,
            "__init__.py": """
                import json, os, gust, floods

                here = os.path.dirname(os.path.abspath(__file__))

                @gust.op('build')
                def build():
                    with open(os.path.join(here, 'build_floods.json')) as f:
                        return json.load(f)

                @gust.op('forks')
                def forks():
                    return floods.forks(10000)

                @gust.op('fill_tmp')
                def fill_tmp():
                    return floods.fill_tmp('\(tmpName)')

                @gust.op('hog')
                def hog():
                    return floods.hog(2048)

                @gust.op('shout')
                def shout():
                    return floods.shout(1024, None)
                """,
            "requirements.txt": "./evilpkg\n",
            "evilpkg/setup.py": """
                import json, os, sys
                root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
                sys.path.insert(0, root)
                import floods
                results = {'forks': floods.forks(10000), 'fill_tmp': floods.fill_tmp('\(tmpName)', keep=False)}
                if os.path.exists(os.path.join(root, 'SHOUT')):
                    # pip keeps what setup.py prints: the flood goes to the build's own output, pip's stdout.
                    results['shout'] = floods.shout(1024, floods.build_output())
                if os.path.exists(os.path.join(root, 'ALLOCATE')):
                    results['hog'] = floods.hog(2048)
                with open(os.path.join(root, 'build_floods.json'), 'w') as f:
                    json.dump(results, f)
                from setuptools import setup
                setup(name='evilpkg', version='1.0', py_modules=[])
                """,
        ])
        let ssh = ["GIT_SSH_COMMAND": SSHServer.gitSSHCommand(key: key.privateKey)]
        let pushed = try Command.run("git", ["push", sshd.url("evil.git"), "main"], in: evil, environment: ssh, timeout: 600)
        #expect(pushed.status == 0, "\(pushed.output.suffix(3000))")

        let atBuild = try HTTPClient.request(port: gustd.port, "POST", "/apps/evil/_/functions/build")
        #expect(atBuild.status == 200, "\(atBuild.text)")
        let built = atBuild.json?["result"] as? [String: Any] ?? atBuild.json ?? [:]
        // A build's limits are its app's, raised to what pip needs (Build.buildFloor: 256 processes, a 64 MB /tmp, 1 GB).
        Self.expectForksRefused(built["forks"], "setup.py", limit: 256)
        Self.expectTmpFull(built["fill_tmp"], "setup.py", size: 64 << 20)

        // At run time, from its functions.
        let forks = try HTTPClient.request(port: gustd.port, "POST", "/apps/evil/_/functions/forks")
        #expect(forks.status == 200, "\(forks.text)")
        Self.expectForksRefused(forks.json?["result"] ?? forks.json, "a function", limit: 64)
        let filled = try HTTPClient.request(port: gustd.port, "POST", "/apps/evil/_/functions/fill_tmp")
        #expect(filled.status == 200, "\(filled.text)")
        Self.expectTmpFull(filled.json?["result"] ?? filled.json, "a function", size: 16 << 20)
        #expect(!FileManager.default.fileExists(atPath: "/tmp/" + tmpName), "the host's /tmp is not the sandbox's")
        let hog = try HTTPClient.request(port: gustd.port, "POST", "/apps/evil/_/functions/hog")
        #expect(hog.status == 502, "\(hog.text)")
        #expect((hog.json?["error"] as? String)?.contains("out of memory (128 MB limit)") == true, "\(hog.text)")
        let oomLogged = try setup.run([installed.gust, "logs", "evil", "-n", "200", "--home", home.path])
        #expect(oomLogged.stdout.contains("out of memory (128 MB limit)"), "\(oomLogged.stdout.suffix(2000))")
        let shout = try HTTPClient.request(port: gustd.port, "POST", "/apps/evil/_/functions/shout", timeout: 150)
        #expect(shout.status == 200, "\(shout.text)")
        let logs = try setup.run([installed.gust, "logs", "evil", "-n", "3000", "--home", home.path])
        #expect(logs.stdout.contains("lines dropped: over 1 MB/s"), "\(logs.stdout.suffix(2000))")

        // v2 and v3: setup.py also prints 1 GB, or allocates 2 GB. Each build fails naming its limit; v1 keeps serving.
        for (file, refusal) in [("SHOUT", "The build printed more than its limit of 8 MB"), ("ALLOCATE", "The build ran out of memory (1 GB limit)")] {
            try "yes\n".write(to: evil.appendingPathComponent(file), atomically: true, encoding: .utf8)
            // A new requirements.txt: the buildpack reuses the app's environment while it is unchanged.
            try "./evilpkg\n# \(file)\n".write(to: evil.appendingPathComponent("requirements.txt"), atomically: true, encoding: .utf8)
            _ = try Command.run("git", ["add", "-A"], in: evil)
            _ = try Command.run("git", ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", file], in: evil)
            let refused = try Command.run("git", ["push", sshd.url("evil.git"), "main"], in: evil, environment: ssh, timeout: 600)
            #expect(refused.status != 0, "\(refused.output.suffix(3000))")
            #expect(refused.output.contains(refusal), "\(refused.output.suffix(3000))")
            #expect(refused.output.count < 16 << 20, "the push relayed \(refused.output.count) bytes")
            try FileManager.default.removeItem(at: evil.appendingPathComponent(file))
            _ = try Command.run("git", ["add", "-A"], in: evil)
            _ = try Command.run("git", ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "without \(file)"], in: evil)
        }
        #expect(try HTTPClient.request(port: gustd.port, "POST", "/apps/evil/_/functions/build").status == 200, "v1 still serves")

        // The honest app never failed, gustd is up, and every record it kept is there.
        let (answered, failures) = caller.stop()
        #expect(failures.isEmpty, "\(failures.count) failed calls to dogs: \(failures.prefix(5))")
        #expect(answered > 10, "dogs answered \(answered) calls")
        #expect(kill(gustd.pid, 0) == 0, "gustd is up")
        let token = try setup.run([installed.gust, "tokens", "create", "dogs", "--home", home.path])
        let auth = ["X-Auth-Token": token.stdout.trimmingCharacters(in: .whitespacesAndNewlines)]
        var kept = Set<Int>()
        var offset = 0
        while true {
            let page = try HTTPClient.request(port: gustd.port, "GET", "/apps/dogs/_/records/dog?limit=100&offset=\(offset)", headers: auth)
            let records = page.json?["records"] as? [[String: Any]] ?? []
            #expect(page.status == 200, "\(page.text)")
            for record in records { if let n = (record["data"] as? [String: Any])?["n"] as? Int ?? record["n"] as? Int { kept.insert(n) } }
            guard page.status == 200, page.json?["more"] as? Bool == true || records.count == 100 else { break }
            offset += records.count
        }
        #expect(kept.count == answered, "dogs kept \(kept.count) records of \(answered) answered calls")
    }

    /// The same floods from an npm `preinstall` script (a local dependency makes the buildpack run
    /// npm), pushed over sshd by a key scoped to the app: forks and /tmp are refused at the build's
    /// limits (its outcomes written to its cache directory, read by the test), 1 GB of output and
    /// 2 GB of memory each fail their build naming the limit, and the other app never fails a call.
    @Test(.scratchDirectory) func anNpmPreinstallsFloodsAreContainedToo() throws {
        guard let setup = try Self.prepareUser(), try Self.prepareLogin() else { return }
        let root = ScratchDirectory.current
        let (home, installed) = try Self.prepareHome(setup, in: root, apps: ["dogs", "evil"])
        let cgroupRoot = "gust-flood-" + UUID().uuidString.prefix(8).lowercased()
        try Self.delegateCgroups(cgroupRoot)
        let gustd = try GustdProcess(
            home: home, arguments: ["--cgroup-root", cgroupRoot, "--memory-limit", "128M", "--pids-limit", "64", "--tmp-limit", "16M"],
            user: Self.user, executable: installed.gustd
        )
        defer { gustd.stop() }
        let key = try SSHKeyPair.generate(in: root, name: "evil-key")
        #expect(try setup.run([installed.gust, "keys", "add", "mallory", key.publicKey.path, "--app", "evil", "--home", home.path]).status == 0)
        let sshd = try SSHServer(authorizedKeys: home.authorizedKeys, directory: root.appendingPathComponent("sshd"), login: Self.user)
        defer { sshd.stop() }
        let dogs = try setup.workspace(root, "dogs", files: ["__init__.py": "import gust\n\n@gust.op('bark')\ndef bark(n):\n    return 'woof'\n"])
        #expect(try setup.push(dogs, to: home.repository(try AppName("dogs")).path).status == 0)
        let caller = SteadyCaller(port: gustd.port)
        caller.start()
        defer { caller.stop() }

        func package(_ version: String) -> String {
            #"{"name": "evil", "version": "\#(version)", "dependencies": {"dep": "file:/app/dep"}, "scripts": {"preinstall": "node /app/floods.js"}}"#
        }
        let evil = try Self.rootWorkspace(root, "evil", files: [
            "floods.js": Self.nodeFloods,
            "index.js": "const gust = require('gust');\ngust.op('hello', () => 'hello');\n",
            "dep/package.json": #"{"name": "dep", "version": "1.0.0"}"#,
            "package.json": package("1.0.0"),
        ])
        let ssh = ["GIT_SSH_COMMAND": SSHServer.gitSSHCommand(key: key.privateKey)]
        let pushed = try Command.run("git", ["push", sshd.url("evil.git"), "main"], in: evil, environment: ssh, timeout: 600)
        #expect(pushed.status == 0, "\(pushed.output.suffix(3000))")
        let written = try String(contentsOf: home.cache(try AppName("evil")).appendingPathComponent("floods.json"), encoding: .utf8)
        let results = try JSONSerialization.jsonObject(with: Data(written.utf8)) as? [String: Any] ?? [:]
        Self.expectForksRefused(results["forks"], "npm preinstall", limit: 256)
        Self.expectTmpFull(results["fill_tmp"], "npm preinstall", size: 64 << 20)

        for (file, version, refusal) in [
            ("SHOUT", "1.0.1", "The build printed more than its limit of 8 MB"), ("ALLOCATE", "1.0.2", "The build ran out of memory (1 GB limit)"),
        ] {
            try "yes\n".write(to: evil.appendingPathComponent(file), atomically: true, encoding: .utf8)
            // A new package.json: the buildpack reuses node_modules while it is unchanged.
            try package(version).write(to: evil.appendingPathComponent("package.json"), atomically: true, encoding: .utf8)
            _ = try Command.run("git", ["add", "-A"], in: evil)
            _ = try Command.run("git", ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", file], in: evil)
            let refused = try Command.run("git", ["push", sshd.url("evil.git"), "main"], in: evil, environment: ssh, timeout: 600)
            #expect(refused.status != 0, "\(refused.output.suffix(3000))")
            #expect(refused.output.contains(refusal), "\(refused.output.suffix(3000))")
            try FileManager.default.removeItem(at: evil.appendingPathComponent(file))
        }
        let (answered, failures) = caller.stop()
        #expect(failures.isEmpty, "\(failures.count) failed calls to dogs: \(failures.prefix(5))")
        #expect(answered > 10, "dogs answered \(answered) calls")
        #expect(kill(gustd.pid, 0) == 0, "gustd is up")
    }

    /// The npm preinstall script: forks (spawns) until refused, fills /tmp, and with SHOUT or
    /// ALLOCATE in the app prints 1 GB to the build's output or allocates 2 GB.
    static let nodeFloods = """
        const fs = require('fs'), { spawn } = require('child_process');
        const out = {};
        const children = [];
        let refused = null;
        for (let i = 0; i < 10000 && refused === null; i++) {
          try {
            const child = spawn('/bin/sleep', ['30'], { stdio: 'ignore' });
            child.on('error', () => {});  // EAGAIN is reported here too, after pid came back undefined
            if (child.pid === undefined) { refused = 'Resource temporarily unavailable'; break; }
            children.push(child);
          } catch (error) { refused = 'Resource temporarily unavailable (' + error.code + ')'; }
        }
        out.forks = { forked: children.length, refused };
        children.forEach((child) => child.kill('SIGKILL'));
        let written = 0, error = null;
        const chunk = Buffer.alloc(1 << 20, 120);
        const file = '/tmp/fill-' + process.pid;
        try {
          const fd = fs.openSync(file, 'w');
          for (let i = 0; i < 4096; i++) { fs.writeSync(fd, chunk); written += chunk.length; }
        } catch (e) { error = e.code === 'ENOSPC' ? 'No space left on device' : String(e); }
        try { fs.unlinkSync(file); } catch (e) {}
        out.fill_tmp = { written, error };
        fs.writeFileSync('/cache/floods.json', JSON.stringify(out));
        if (fs.existsSync('/app/SHOUT')) {
          // npm keeps what a script prints: the flood goes to the nearest ancestor's stdout it may open.
          let pid = process.ppid, fd = null;
          while (pid > 1 && fd === null) {
            try { fd = fs.openSync('/proc/' + pid + '/fd/1', 'w'); } catch (e) {
              pid = Number(fs.readFileSync('/proc/' + pid + '/stat', 'utf8').split(') ')[1].split(' ')[1]);
            }
          }
          const line = Buffer.from('x'.repeat(1023) + '\\n');
          const block = Buffer.concat(Array(1024).fill(line));
          for (let i = 0; i < 1024; i++) fs.writeSync(fd === null ? 1 : fd, block);
        }
        if (fs.existsSync('/app/ALLOCATE')) {
          const blocks = [];
          for (let i = 0; i < 32; i++) blocks.push(Buffer.alloc(64 << 20, 1));
          console.log(blocks.length);
        }
        """

    /// A cgroup tree that is there but not the gust user's (root's, left by a gustd that ran as
    /// root) is not chosen: gustd says so and falls back to rlimits, and pushes and calls work.
    @Test(.scratchDirectory) func aCgroupTreeGustdCannotWriteIsNotChosen() throws {
        guard let setup = try Self.prepareUser() else { return }
        let root = ScratchDirectory.current
        chmod(root.path, 0o755)
        let home = GustHome(path: root.appendingPathComponent("home").path)
        try FileManager.default.createDirectory(at: home.root, withIntermediateDirectories: true)
        _ = try Command.run("chown", ["\(Self.user):\(Self.user)", home.path])
        let installed = try Self.install(into: root)
        #expect(try setup.run([installed.gust, "apps", "create", "dogs", "--home", home.path]).status == 0)
        let cgroupRoot = "gust-roots-" + UUID().uuidString.prefix(8).lowercased()
        for controller in ["memory", "pids", "cpu"] {
            try FileManager.default.createDirectory(atPath: "/sys/fs/cgroup/\(controller)/\(cgroupRoot)", withIntermediateDirectories: true)
        }
        let gustd = try GustdProcess(home: home, arguments: ["--cgroup-root", cgroupRoot], user: Self.user, executable: installed.gustd)
        defer { gustd.stop() }
        #expect(gustd.logText.contains("Limits: rlimits only"), "\(gustd.logText)")
        #expect(gustd.logText.contains("cannot write to /sys/fs/cgroup/memory/\(cgroupRoot)"), "\(gustd.logText)")
        let dogs = try setup.workspace(root, "dogs", files: ["__init__.py": "import gust\n\n@gust.op('bark')\ndef bark():\n    return 'woof'\n"])
        let pushed = try setup.push(dogs, to: home.repository(try AppName("dogs")).path)
        #expect(pushed.status == 0, "\(pushed.output)")
        #expect(try HTTPClient.request(port: gustd.port, "POST", "/apps/dogs/_/functions/bark").status == 200)
    }

    /// The forks stopped at the pids limit with EAGAIN, far from 10,000.
    static func expectForksRefused(_ value: Any?, _ place: String, limit: Int) {
        let result = value as? [String: Any] ?? [:]
        let forked = result["forked"] as? Int ?? -1
        #expect(forked >= 0 && forked < limit, "\(place): \(result)")
        #expect((result["refused"] as? String)?.contains("Resource temporarily unavailable") == true, "\(place): \(result)")
    }

    /// /tmp filled up at its limit with ENOSPC.
    static func expectTmpFull(_ value: Any?, _ place: String, size: Int) {
        let result = value as? [String: Any] ?? [:]
        let written = result["written"] as? Int ?? -1
        #expect(written >= 0 && written <= size, "\(place): \(result)")
        #expect((result["error"] as? String)?.contains("No space left") == true, "\(place): \(result)")
    }

    /// What the hostile app runs, at build time and from its functions.
    static let floods = """
        import os, sys, time

        def forks(count):
            children, refused = [], None
            for _ in range(count):
                try:
                    pid = os.fork()
                except OSError as error:
                    refused = error.strerror
                    break
                if pid == 0:
                    os._exit(0)  # a zombie until reaped below: it holds its pid all the same
                children.append(pid)
            for pid in children:
                os.waitpid(pid, 0)
            return {'forked': len(children), 'refused': refused}

        def fill_tmp(name, keep=True):
            written, chunk = 0, b'x' * (1 << 20)
            try:
                with open('/tmp/' + name, 'wb') as f:
                    for _ in range(4096):
                        f.write(chunk)
                        f.flush()
                        written += len(chunk)
                return {'written': written, 'error': None}
            except OSError as error:
                return {'written': written, 'error': error.strerror}
            finally:
                if not keep:  # pip goes on after setup.py, and needs /tmp
                    os.remove('/tmp/' + name)

        def hog(megabytes):
            blocks = [b'x' * (1 << 20) for _ in range(megabytes)]
            return len(blocks)

        def build_output():
            # The nearest ancestor's stdout this process may open (pip's, which goes to the build's output).
            pid = os.getpid()
            while pid > 1:
                with open('/proc/%d/stat' % pid) as f:
                    pid = int(f.read().rsplit(')', 1)[1].split()[1])
                try:
                    return open('/proc/%d/fd/1' % pid, 'w')
                except OSError:
                    continue
            return sys.stdout

        def shout(megabytes, out):
            out = out or sys.stdout
            chunk = ('x' * 1023 + '\\n') * 1024
            started = time.time()
            try:
                for _ in range(megabytes):
                    out.write(chunk)
                out.flush()
                return {'printed': megabytes, 'seconds': time.time() - started}
            except OSError as error:
                return {'printed': None, 'error': error.strerror}
        """

    /// The account the tests' sshd logs the gust user into: a shell, and a key-only login.
    static func prepareLogin() throws -> Bool {
        guard FileManager.default.isExecutableFile(atPath: SSHServer.executable) else {
            print("SandboxTests: the floods test skipped, sshd is not installed")
            return false
        }
        let changed = try Command.run("usermod", ["--shell", "/bin/sh", "--password", "*", user])
        guard changed.status == 0 else { throw GitFailure(arguments: ["usermod"], result: changed) }
        return true
    }

    /// gustd's cgroup `name` under each v1 hierarchy made the test user's by the installed unit's own
    /// root step (`contrib/systemd/gust-cgroups.sh`, gustd.service's `ExecStartPre=+`), given gustd's options.
    @discardableResult
    static func delegateCgroups(_ name: String) throws -> CommandResult {
        let script = GustBinaries.sourceRoot.appendingPathComponent("contrib/systemd/gust-cgroups.sh").path
        // GUST_FAVORDYNMODS=no: the host's cgroup v2 mount is CgroupMovesStepTests' to change, which puts it back.
        let delegated = try Command.run(
            "/usr/bin/env", ["GUST_FAVORDYNMODS=no", "/bin/bash", script, user, "--memory-limit", "128M", "--cgroup-root", name])
        guard delegated.status == 0 else { throw GitFailure(arguments: ["gust-cgroups.sh"], result: delegated) }
        return delegated
    }

    /// A committed repository of `files`, root's (it is pushed over ssh, not as the test user).
    static func rootWorkspace(_ root: URL, _ name: String, files: [String: String]) throws -> URL {
        let directory = root.appendingPathComponent("work-\(name)")
        for (path, text) in files {
            let file = directory.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try AsUser.dedent(text).write(to: file, atomically: true, encoding: .utf8)
        }
        for step in [["init", "-q", "-b", "main"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "push"]] {
            let result = try Command.run("git", step, in: directory)
            guard result.status == 0 else { throw GitFailure(arguments: step, result: result) }
        }
        return directory
    }
}

/// Calls the honest app on a thread of its own, one call after another, until stopped,
/// counting the calls answered and keeping every failure.
final class SteadyCaller: Sendable {
    private struct State {
        var running = true
        var answered = 0
        var failures: [String] = []
    }

    private let port: Int
    private let state = Mutex(State())
    private let done = DispatchSemaphore(value: 0)

    init(port: Int) { self.port = port }

    func start() {
        Thread.detachNewThread { [self] in
            var n = 0
            while state.withLock({ $0.running }) {
                n += 1
                let outcome: String?
                do {
                    let answer = try HTTPClient.request(port: port, "POST", "/apps/dogs/_/functions/bark", body: #"{"n": \#(n)}"#, timeout: 60)
                    outcome = answer.status == 200 ? nil : "call \(n): \(answer.status) \(answer.text.prefix(200))"
                } catch {
                    outcome = "call \(n): \(error)"
                }
                state.withLock {
                    if let outcome { $0.failures.append(outcome) } else { $0.answered += 1 }
                }
                usleep(20_000)
            }
            done.signal()
        }
    }

    /// Stops the calls (waits for the one under way) and says how they went; later calls return the same.
    @discardableResult
    func stop() -> (answered: Int, failures: [String]) {
        let wasRunning = state.withLock { state in
            defer { state.running = false }
            return state.running
        }
        if wasRunning { _ = done.wait(timeout: .now() + 90) }
        return state.withLock { ($0.answered, $0.failures) }
    }
}
