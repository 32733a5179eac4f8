import Foundation
import GustCore
import GustTesting
import Synchronization
import Testing

/// Python instances forked from their release's zygote, behind a real gustd:
/// each fork its own instance id, random state, records token and output; an
/// app that starts a thread at import still served (each instance a fresh
/// interpreter); the zygote stopped after zygote-idle, restarted after a
/// SIGKILL, and gone with gustd. All with `--sandbox none` but the last, which
/// checks that under the sandbox the zygote runs sandboxed and instances are its forks.
@Suite(.timeLimit(.minutes(20)))
struct ZygoteTests {
    static let app = """
        import hashlib
        import os
        import random
        import time

        import gust

        def describe():
            token = os.environ.get('GUST_RECORDS_TOKEN', '')
            return {'pid': os.getpid(), 'parent': os.getppid(), 'instance': os.environ['GUST_INSTANCE'],
                    'random': random.random(), 'token': hashlib.sha256(token.encode()).hexdigest()}

        @gust.op('whoami')
        def whoami(seconds=0):
            time.sleep(seconds)
            me = describe()
            print('hello from', me['instance'], flush=True)
            me['saved'] = gust.records.save('visit', {'instance': me['instance']}).get('instance')
            return me
        """

    /// App code that finds, at import, its zygote's control socket (`_control`; None outside a
    /// zygote, where no socket is open at import).
    static let findsItsControlSocket = """

        import select
        import socket as _socket

        def _control_socket():
            # A zygote's control socket is a SOCK_SEQPACKET one; an instance started on its own
            # holds the stream socket gustd bound for it.
            for name in os.listdir('/proc/self/fd'):
                try:
                    if os.readlink(f'/proc/self/fd/{name}').startswith('socket:'):
                        probe = _socket.socket(fileno=os.dup(int(name)))
                        kind = probe.type
                        probe.close()
                        if kind == _socket.SOCK_SEQPACKET:
                            return int(name)
                except OSError:
                    pass

        _control = _control_socket()

        """

    func deployed(_ source: String = Self.app, sandbox: String = "none") throws -> PushFixture {
        let fixture = try PushFixture(gustdArguments: ["--sandbox", sandbox])
        let work = try fixture.workspace("py")
        try work.write("__init__.py", source)
        try work.commit("One")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
        return fixture
    }

    func scale(_ fixture: PushFixture, _ arguments: [String]) throws {
        let result = try GustBinaries.gust(fixture.home, ["scale", "cats"] + arguments)
        #expect(result.status == 0, "\(result.output)")
    }

    func whoami(_ fixture: PushFixture, seconds: Double = 0) throws -> [String: Any] {
        let answer = try fixture.call("POST", "/_/functions/whoami", body: #"{"seconds": \#(seconds)}"#)
        #expect(answer.status == 200, "\(answer.text)")
        return answer.json ?? [:]
    }

    func ps(_ fixture: PushFixture) throws -> [InstanceStatus] {
        let result = try GustBinaries.gust(fixture.home, ["ps", "cats", "--json"])
        // The instances (a zygote has its own line, `kind` "zygote").
        return ((try? JSONDecoder().decode([InstanceStatus].self, from: Data(result.stdout.utf8))) ?? []).filter { $0.kind == nil }
    }

    func logs(_ fixture: PushFixture) throws -> String {
        try GustBinaries.gust(fixture.home, ["logs", "cats", "-n", "500"]).stdout
    }

    /// Waits (at most `seconds`, in 50 ms steps) for `condition`.
    func eventually(within seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        for _ in 0..<Int(seconds * 20) {
            if try condition() { return true }
            usleep(50_000)
        }
        return try condition()
    }

    /// The process's cgroup in the cgroup v1 cpu hierarchy (`/proc/PID/cgroup`'s `N:cpu…:/PATH` line),
    /// else in the v2 one (`0::/PATH`).
    static func cpuCgroup(of pid: Int32) -> String? {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8)) ?? ""
        let lines = text.split(separator: "\n").map { $0.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false) }
        let v1 = lines.first { $0.count == 3 && $0[1].split(separator: ",").contains("cpu") }
        return (v1 ?? lines.first { $0.count == 3 && $0[0] == "0" && $0[1].isEmpty }).map { String($0[2]) }
    }

    static func commandLine(of pid: Int32) -> String {
        let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()
        return String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
    }

    static func environment(of pid: Int32) -> [String] {
        let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") ?? Data()
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test(.scratchDirectory) func twoForksHaveTheirOwnInstanceRandomStateTokenAndOutput() throws {
        let fixture = try deployed()
        try scale(fixture, ["--min", "2", "--max", "2"])
        let answers = Mutex([[String: Any]]())
        _ = InstancePoolTests.onThreads(2) { _ in
            let answer = try? HTTPClient.request(port: fixture.port, "POST", "/apps/cats/_/functions/whoami", body: #"{"seconds": 0.5}"#)
            answers.withLock { $0.append(answer?.json ?? [:]) }
        }
        let (first, second) = answers.withLock { ($0[0], $0[1]) }
        let instances = [first["instance"] as? String, second["instance"] as? String]
        #expect(instances[0] != nil && instances[0] != instances[1], "two instances answered: \(instances)")
        #expect(first["random"] as? Double != second["random"] as? Double, "each fork has its own random state")
        #expect(first["token"] as? String != second["token"] as? String, "each fork has its own records token")
        #expect(first["saved"] as? String == instances[0] && second["saved"] as? String == instances[1], "each wrote a record with it")

        // Both are forks of one zygote: a Python process that is not gustd, holding no instance's id.
        let zygote = try #require((first["parent"] as? Int).map(Int32.init))
        #expect(second["parent"] as? Int == Int(zygote), "\(first) \(second)")
        #expect(zygote != fixture.gustd?.pid)
        #expect(Self.commandLine(of: zygote).contains("gust.server"), "\(Self.commandLine(of: zygote))")
        // gustd runs at its own CPU weight in a cgroup beside its tree (`--cpu-weight`, GustdCgroup); the
        // zygote, which imports the app, and its forks are in the app's cgroups under the tree, not gustd's.
        let gustd = try #require(fixture.gustd)
        #expect(Self.cpuCgroup(of: gustd.pid) == "/\(gustd.cgroupRoot)d")
        #expect(Self.cpuCgroup(of: zygote)?.hasPrefix("/\(gustd.cgroupRoot)/cats/") == true, "\(Self.cpuCgroup(of: zygote) ?? "none")")
        for answer in [first, second] {
            let pid = try #require((answer["pid"] as? Int).map(Int32.init))
            #expect(Self.cpuCgroup(of: pid)?.hasPrefix("/\(gustd.cgroupRoot)/cats/") == true, "\(Self.cpuCgroup(of: pid) ?? "none")")
        }
        // What gustd's straggler scan reads: each fork shows its own id, not the zygote's.
        for answer in [first, second] {
            let pid = try #require((answer["pid"] as? Int).map(Int32.init))
            let id = try #require(answer["instance"] as? String)
            #expect(Self.environment(of: pid).contains("GUST_INSTANCE=\(id)"))
            #expect(!Self.environment(of: pid).contains { $0.hasPrefix("GUST_INTERNAL_TOKEN=") })
        }
        // Each fork's output reaches the app's log, credited to that fork.
        let found = try eventually(within: 5) {
            let log = try logs(fixture)
            return instances.compactMap { $0 }.allSatisfy { log.contains("\($0) [op whoami] hello from \($0)") }
        }
        let log = try logs(fixture)
        #expect(found, "\(log)")
    }

    /// A deploy starts as many instances of the new release as serve now, at once: the release is
    /// unpacked once (not once per start) and its instances are forks of one zygote.
    @Test(.scratchDirectory) func fourInstancesOfANewReleaseShareOneUnpackAndOneZygote() throws {
        let fixture = try deployed()
        try scale(fixture, ["--min", "4", "--max", "4"])
        let serving = try eventually(within: 30) { try ps(fixture).filter { $0.state == "idle" }.count == 4 }
        let listed = try ps(fixture)
        #expect(serving, "\(listed)")
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app + "\n# two\n")
        try work.commit("Two")
        let push = try work.push(to: fixture.remote)
        try #require(push.status == 0, "\(push.output)")
        func count(_ line: String) -> Int { push.output.components(separatedBy: line).count - 1 }
        #expect(count("Starting instance ") == 4, "\(push.output)")
        #expect(count("Unpacking v2 ") == 1, "\(push.output)")
        let log = try logs(fixture)
        #expect(log.components(separatedBy: "Unpacking v2 ").count - 1 == 1, "the app's log says it once: \(log)")
        #expect(count("Starting zygote ") == 1, "\(push.output)")
        let instances = try ps(fixture).filter { $0.release == 2 }
        #expect(instances.count == 4, "\(instances)")
    }

    @Test(.scratchDirectory) func anAppThatStartsAThreadAtImportIsServedWithoutAZygote() throws {
        let fixture = try deployed("""
            import os
            import threading
            import time

            import gust

            ticks = []
            threading.Thread(target=lambda: [ticks.append(time.sleep(0.01)) for _ in iter(int, 1)], daemon=True, name='ticker').start()

            @gust.op('whoami')
            def whoami():
                return {'parent': os.getppid(), 'ticks': len(ticks)}
            """)
        let answer = try fixture.call("POST", "/_/functions/whoami", body: "{}")
        #expect(answer.status == 200, "\(answer.text)")
        #expect(answer.json?["parent"] as? Int == fixture.gustd.map { Int($0.pid) }, "started by gustd itself: \(answer.text)")
        #expect((answer.json?["ticks"] as? Int ?? 0) > 0, "its thread runs: \(answer.text)")
        let log = try logs(fixture)
        #expect(log.contains("fresh interpreter") && log.contains("1 thread(s) at import (ticker)"), "\(log)")
    }

    /// A launch that has to start its release's zygote asks for its fork while the zygote imports
    /// the app: the request already waits on the zygote's control socket before the import ends,
    /// so the fork follows the import without a round trip to gustd. The app's import looks for
    /// it (a socket readable, not read) and says what it saw.
    @Test(.scratchDirectory) func aColdStartAsksForItsForkWhileTheZygoteImportsTheApp() throws {
        let fixture = try deployed(Self.app + Self.findsItsControlSocket + """
            if _control is not None:  # in a zygote (its control socket is its only one at import)
                _waiting = bool(select.select([_control], [], [], 5)[0])
                print('a fork request waited during the import:', _waiting, flush=True)
            """)
        let first = try whoami(fixture)
        let zygote = try #require((first["parent"] as? Int).map(Int32.init))
        #expect(zygote != fixture.gustd?.pid, "a fork of the zygote: \(first)")
        let log = try logs(fixture)
        #expect(log.contains("a fork request waited during the import: True"), "\(log)")
        #expect(!log.contains("a fork request waited during the import: False"), "\(log)")
    }

    /// The app's import runs in the zygote with its control socket open, so it can take the fork
    /// request waiting there: the zygote then never answers it. The start does not wait for ever:
    /// past half the start timeout the fork is given up and the instance starts on its own, within
    /// the deploy's time.
    @Test(.scratchDirectory) func aForkRequestTakenAtImportIsGivenUpAndTheInstanceStartsOnItsOwn() throws {
        let fixture = try PushFixture(gustdArguments: ["--sandbox", "none", "--start-timeout", "8"])
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app + Self.findsItsControlSocket + """
            import socket

            if _control is not None:  # in the zygote: take what waits on its control socket
                _taker = socket.socket(fileno=os.dup(_control))
                if select.select([_taker], [], [], 5)[0]:
                    _taken = socket.recv_fds(_taker, 1 << 16, 16)
                    print('took the fork request', flush=True)
                _taker.close()
            """)
        try work.commit("One")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
        let answer = try whoami(fixture)
        #expect(answer["parent"] as? Int == fixture.gustd.map { Int($0.pid) }, "started on its own: \(answer)")
        #expect(try logs(fixture).contains("took the fork request"))
    }

    @Test(.scratchDirectory) func scaledToZeroTheInstanceStopsAfterIdleThenTheZygoteAfterZygoteIdle() throws {
        let fixture = try deployed()
        try scale(fixture, ["--min", "0", "--idle", "1s"])  // zygote-idle: 4 s
        let first = try whoami(fixture)
        let instance = try #require((first["pid"] as? Int).map(Int32.init))
        let zygote = try #require((first["parent"] as? Int).map(Int32.init))
        #expect(eventually(within: 10) { !GustdProcess.isAlive(instance) }, "the instance stops after idle")
        #expect(GustdProcess.isAlive(zygote), "the zygote outlives its instances")
        let resident = try whoami(fixture)
        #expect(resident["parent"] as? Int == Int(zygote), "the next call is a fork of the resident zygote")
        let forked = try #require((resident["pid"] as? Int).map(Int32.init))
        #expect(eventually(within: 20) { !GustdProcess.isAlive(forked) && !GustdProcess.isAlive(zygote) }, "the zygote stops after zygote-idle")
        #expect(try logs(fixture).contains("zygote-idle"))
        let next = try whoami(fixture)
        #expect(next["parent"] as? Int != Int(zygote), "a new zygote forks the next instance")
    }

    @Test(.scratchDirectory) func aZygoteKilledWithSIGKILLIsReplacedAndThePoolKeepsServing() throws {
        let fixture = try deployed()
        try scale(fixture, ["--max", "2"])
        let first = try whoami(fixture)
        let instance = try #require((first["pid"] as? Int).map(Int32.init))
        let zygote = try #require((first["parent"] as? Int).map(Int32.init))
        kill(zygote, SIGKILL)
        #expect(eventually(within: 5) { !GustdProcess.isAlive(zygote) })
        let orphan = try whoami(fixture)
        #expect(orphan["pid"] as? Int == Int(instance), "its fork keeps serving without it")
        kill(-instance, SIGKILL)
        // Once its pool has seen it go (a call sent before then is a 502, as for any instance that dies).
        #expect(try eventually(within: 10) { try !ps(fixture).contains { $0.pid == Int(instance) } })
        let next = try whoami(fixture)
        let parent = try #require((next["parent"] as? Int).map(Int32.init))
        #expect(parent != zygote && parent != fixture.gustd?.pid, "a new zygote forked it: \(next)")
        #expect(GustdProcess.isAlive(parent))
    }

    /// A zygote is the app's own interpreter and gets both write ends of every fork's output pipes:
    /// app code run at each fork can keep them. gustd's readers of a fork that has exited end after
    /// the grace anyway; they waited for the pipes' end, and gustd kept two threads and two
    /// descriptors per fork for as long as the zygote lived.
    @Test(.scratchDirectory) func forksWhosePipesTheZygoteKeepsCostGustdNothingOnceTheyExit() throws {
        let fixture = try deployed(Self.app + """

            kept = {}

            def _keep_pipes():
                # One descriptor of each pipe the zygote was handed (a fork's stdout and stderr).
                for name in os.listdir('/proc/self/fd'):
                    try:
                        target = os.readlink(f'/proc/self/fd/{name}')
                        if target.startswith('pipe:') and target not in kept:
                            kept[target] = os.dup(int(name))
                    except OSError:
                        pass

            os.register_at_fork(after_in_parent=_keep_pipes)

            @gust.op('die')
            def die():
                os._exit(0)

            """)
        let gustd = try #require(fixture.gustd?.pid)
        func count(_ what: String) -> Int { ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(gustd)/\(what)")) ?? []).count }
        let first = try whoami(fixture)
        #expect(first["parent"] as? Int != Int(gustd), "a fork of the zygote: \(first)")
        let (threads, descriptors) = (count("task"), count("fd"))
        for _ in 0..<20 {
            _ = try fixture.call("POST", "/_/functions/die", body: "{}")  // 502: its process died
            _ = try whoami(fixture)
        }
        // Each fork's readers end 2 s after it exited.
        #expect(eventually(within: 15) { count("task") <= threads + 8 && count("fd") <= descriptors + 8 },
                "gustd went from \(threads) threads and \(descriptors) descriptors to \(count("task")) and \(count("fd"))")
        let again = try whoami(fixture)
        #expect(again["parent"] as? Int == first["parent"] as? Int, "the same zygote forked them all: \(fixture.gustd?.logText ?? "")")
    }

    @Test(.scratchDirectory) func sigtermLeavesNoZygoteAndNoForkBehind() throws {
        let fixture = try deployed()
        try scale(fixture, ["--min", "2", "--max", "2"])
        let gustd = try #require(fixture.gustd)
        let answers = Mutex([[String: Any]]())
        _ = InstancePoolTests.onThreads(2) { _ in
            let answer = try? HTTPClient.request(port: fixture.port, "POST", "/apps/cats/_/functions/whoami", body: #"{"seconds": 0.3}"#)
            answers.withLock { $0.append(answer?.json ?? [:]) }
        }
        let pids: [Int32] = answers.withLock { $0 }.flatMap { [$0["pid"] as? Int, $0["parent"] as? Int] }.compactMap { $0.map { Int32($0) } }
        #expect(Set(pids).count == 3, "two forks and their zygote: \(pids)")
        #expect(gustd.terminate(within: 20) == 0)
        for pid in Set(pids) { #expect(!GustdProcess.isAlive(pid), "\(pid) (\(Self.commandLine(of: pid))) outlived gustd") }
    }

    /// Under `--sandbox bubblewrap` the release's zygote runs in a sandbox of the app's (here as
    /// root: no app uid, the sandbox's namespaces still), and each instance is a fork of it there:
    /// its own instance id, random state, records token and records channel.
    @Test(.scratchDirectory) func underTheSandboxTheZygoteRunsSandboxedAndInstancesAreItsForks() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") else {
            print("ZygoteTests: the sandbox's case skipped, bubblewrap is not installed (scripts/install-deps.sh)")
            return
        }
        let fixture = try deployed(sandbox: "bubblewrap")
        try scale(fixture, ["--min", "2", "--max", "2"])
        let answers = Mutex([[String: Any]]())
        _ = InstancePoolTests.onThreads(2) { _ in
            let answer = try? HTTPClient.request(port: fixture.port, "POST", "/apps/cats/_/functions/whoami", body: #"{"seconds": 0.3}"#)
            answers.withLock { $0.append(answer?.json ?? [:]) }
        }
        let (first, second) = answers.withLock { ($0[0], $0[1]) }
        let instances = [first["instance"] as? String, second["instance"] as? String]
        #expect(instances[0] != nil && instances[0] != instances[1], "\(first) \(second)")
        #expect(first["random"] as? Double != second["random"] as? Double, "each fork has its own random state")
        #expect(first["token"] as? String != second["token"] as? String, "each fork has its own records token")
        #expect(first["saved"] as? String == instances[0] && second["saved"] as? String == instances[1], "each wrote a record with it")
        #expect(first["parent"] as? Int == second["parent"] as? Int, "both are forks of one process: \(first) \(second)")
        let log = try logs(fixture)
        #expect(!log.contains("not forked from a zygote"), "\(log)")

        // Seen from the host: the zygote `gust ps` lists is the parent of both, and it runs in a
        // PID namespace of its own (the sandbox's) under the wrapper gustd recorded for it.
        let listed = try GustBinaries.gust(fixture.home, ["ps", "cats", "--json"])
        let all = (try? JSONDecoder().decode([InstanceStatus].self, from: Data(listed.stdout.utf8))) ?? []
        let zygote = try #require(all.first { $0.kind == "zygote" }?.pid.map(Int32.init), "\(listed.output)")
        for instance in all where instance.kind == nil {
            let pid = try #require(instance.pid.map(Int32.init))
            #expect(SandboxTests.parent(of: pid) == zygote, "instance \(instance.id ?? "") (\(pid)) is a fork of \(zygote)")
        }
        let status = (try? String(contentsOfFile: "/proc/\(zygote)/status", encoding: .utf8)) ?? ""
        let levels = status.split(separator: "\n").first { $0.hasPrefix("NSpid:") }?.split(whereSeparator: \.isWhitespace).count ?? 0
        #expect(levels == 3, "the zygote is in a PID namespace of its own: \(status)")
        // It entered its app's prepared sandbox (gustd's child, recorded itself): the holder's user
        // namespace, read from the host, with a mount and PID namespace of its own.
        let recorded = try #require(GustdProcess.recordedZygotePIDs(of: fixture.home).first)
        #expect(recorded == zygote, "the zygote is gustd's own child, no wrapper")
        let gustd = try #require(fixture.gustd?.pid)
        let holder = try #require(Self.holderSleeper(under: gustd), "the app's holder runs under gustd")
        let namespace = { (pid: Int32, name: String) in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/\(name)")) ?? "gone \(pid)"
        }
        #expect(namespace(zygote, "user") == namespace(holder, "user"), "the zygote shares its holder's user namespace")
        #expect(namespace(zygote, "mnt") != namespace(holder, "mnt") && namespace(zygote, "pid") != namespace(holder, "pid"))

        // A second release's zygote enters the same holder, with namespaces of its own again.
        let (firstMount, firstPID) = (namespace(zygote, "mnt"), namespace(zygote, "pid"))
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app + "\n# two\n")
        try work.commit("Two")
        let pushed = try work.push(to: fixture.remote)
        #expect(pushed.status == 0, "\(pushed.output)")
        _ = try whoami(fixture)
        let zygotes = try GustBinaries.gust(fixture.home, ["ps", "cats", "--json"])
        let listedAgain = (try? JSONDecoder().decode([InstanceStatus].self, from: Data(zygotes.stdout.utf8))) ?? []
        let nextZygote = try #require(listedAgain.first { $0.kind == "zygote" && $0.release == 2 }?.pid.map(Int32.init), "\(zygotes.output)")
        #expect(nextZygote != zygote)
        #expect(Self.holderSleeper(under: gustd) == holder, "one holder for the app's releases")
        #expect(namespace(nextZygote, "user") == namespace(holder, "user"))
        #expect(namespace(nextZygote, "mnt") != firstMount && namespace(nextZygote, "pid") != firstPID)
    }

    /// gustd makes a served app's holder as it starts, before any call (`SandboxHolders.prepare`),
    /// and the first call's start enters that holder instead of making one.
    @Test(.scratchDirectory) func underTheSandboxAServedAppsHolderIsMadeAtGustdsStartAndTheFirstCallEntersIt() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") else {
            print("ZygoteTests: the sandbox's case skipped, bubblewrap is not installed (scripts/install-deps.sh)")
            return
        }
        let fixture = try deployed(sandbox: "bubblewrap")
        try scale(fixture, ["--min", "0"])  // so that nothing of cats starts before a call
        let gustd = try #require(fixture.gustd)
        gustd.stop()
        try gustd.start()
        // No call yet: the holder is there within a bounded wait (made in the background).
        var holder: Int32?
        for _ in 0..<200 where holder == nil {
            holder = Self.holderSleeper(under: gustd.pid)
            if holder == nil { usleep(50_000) }
        }
        let prepared = try #require(holder, "cats' holder made at gustd's start, before any call\n\(gustd.logText)")
        let before = GustdProcess.recordedZygotePIDs(of: fixture.home).filter(GustdProcess.isAlive)
        #expect(before.isEmpty, "nothing of cats started yet: \(before)")
        _ = try whoami(fixture)
        let zygote = try #require(
            GustdProcess.recordedZygotePIDs(of: fixture.home).first(where: GustdProcess.isAlive), "the first call started the zygote"
        )
        let namespace = { (pid: Int32, name: String) in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/\(name)")) ?? "gone \(pid)"
        }
        #expect(namespace(zygote, "user") == namespace(prepared, "user"), "the first start entered the prepared holder")
        #expect(Self.holderSleeper(under: gustd.pid) == prepared, "the same holder, not a second one")
        // Stopped after idle (its zygote too), the app's next start enters the same holder again.
        try scale(fixture, ["--idle", "1s"])
        #expect(eventually(within: 30) { GustdProcess.recordedZygotePIDs(of: fixture.home).filter(GustdProcess.isAlive).isEmpty })
        _ = try whoami(fixture)
        let again = try #require(GustdProcess.recordedZygotePIDs(of: fixture.home).first(where: GustdProcess.isAlive))
        #expect(again != zygote && namespace(again, "user") == namespace(prepared, "user"))
        #expect(Self.holderSleeper(under: gustd.pid) == prepared, "still the holder made at gustd's start")
        #expect(!gustd.logText.contains("cannot prepare its sandbox"), "\(gustd.logText)")
    }

    /// The `sleep infinity` of an app's holder sandbox (`SandboxHolders`) among gustd's descendants.
    static func holderSleeper(under gustd: Int32) -> Int32? {
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }
        return pids.first { pid in
            let command = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
            return command == "/usr/bin/sleep\0infinity\0" && SandboxPID.descends(pid, from: [gustd])
        }
    }
}
