import Foundation
import GustCore
import GustTesting
import Testing

/// `gust limits` enforced on real instances by gustd's cgroups (issue 12, item 4):
/// each limit kills or refuses, the app's log says so, gustd and the next call survive.
@Suite(.timeLimit(.minutes(20)))
struct LimitsTests {
    static let app = """
        import os
        import sys
        import time

        import gust

        @gust.op('hello')
        def hello():
            return {'pid': os.getpid(), 'instance': os.environ['GUST_INSTANCE']}

        @gust.op('fill_tmp')
        def fill_tmp():
            try:
                with open('/tmp/filler', 'wb') as out:
                    out.write(b'x' * (2 * 1024 * 1024))
                return {'written': True}
            except OSError as error:
                return {'written': False, 'error': error.strerror}
            finally:
                if os.path.exists('/tmp/filler'):
                    os.remove('/tmp/filler')

        @gust.op('hog')
        def hog():
            block = bytearray(2 * 1024 ** 3)
            return len(block)

        @gust.op('forks')
        def forks():
            children = []
            refused = None
            for _ in range(10000):
                try:
                    pid = os.fork()
                except OSError as error:
                    refused = str(error)
                    break
                if pid == 0:
                    time.sleep(60)
                    os._exit(0)
                children.append(pid)
            for pid in children:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            return {'forked': len(children), 'refused': refused}

        @gust.op('busy')
        def busy(seconds):
            end = time.time() + seconds
            n = 0
            while time.time() < end:
                n += 1
            return n

        @gust.op('shout')
        def shout(megabytes):
            chunk = ('x' * 1023 + '\\n') * 1024
            for _ in range(megabytes):
                sys.stdout.write(chunk)
            sys.stdout.flush()
            return megabytes

        """

    func deploy(_ fixture: PushFixture) throws {
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app)
        try work.commit("App")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
    }

    func limits(_ fixture: PushFixture, _ arguments: [String]) throws {
        let set = try GustBinaries.gust(fixture.home, ["limits", "cats"] + arguments)
        #expect(set.status == 0, "\(set.output)")
    }

    @Test(.scratchDirectory) func anInstanceOverItsMemoryIsKilledAndTheNextCallGetsAFreshOne() throws {
        let fixture = try PushFixture()
        try limits(fixture, ["--memory", "64M"])
        try deploy(fixture)
        let gustd = try #require(fixture.gustd)
        #expect(gustd.logText.contains("Limits: cgroup v1"), "\(gustd.logText)")

        let before = try fixture.call("POST", "/_/functions/hello", body: "{}")
        #expect(before.status == 200)
        let hog = try fixture.call("POST", "/_/functions/hog", body: "{}")
        #expect(hog.status == 502, "\(hog.text)")
        #expect(hog.json?["code"] as? Int == 502)
        #expect((hog.json?["error"] as? String)?.contains("out of memory (64 MB limit)") == true, "\(hog.text)")

        let logs = try GustBinaries.gust(fixture.home, ["logs", "cats", "-n", "50"])
        #expect(logs.stdout.contains("out of memory (64 MB limit)"), "\(logs.output)")
        let after = try fixture.call("POST", "/_/functions/hello", body: "{}")
        #expect(after.status == 200, "\(after.text)")
        // Its instance id, not its pid: a sandboxed instance's pid is its PID namespace's (the same in each).
        #expect(after.json?["instance"] as? String != before.json?["instance"] as? String, "a fresh instance answers")
    }

    /// The release's zygote takes more memory importing the app than the limit allows: the push
    /// says so, naming the limit and how to raise it, and the release before keeps serving.
    @Test(.scratchDirectory) func anImportPastTheMemoryLimitFailsThePushNamingTheLimit() throws {
        let fixture = try PushFixture()
        try limits(fixture, ["--memory", "32M"])
        try deploy(fixture)
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app + "\nballast = b'x' * (256 * 1024 * 1024)\n")
        try work.commit("Import 256 MB")
        let push = try work.push(to: fixture.remote)
        #expect(push.status != 0, "\(push.output)")
        #expect(push.output.contains("v2 ran out of memory (32 MB limit) while starting"), "\(push.output)")
        #expect(push.output.contains("Raise the limit: gust limits cats --memory 64M"), "\(push.output)")
        #expect(try fixture.call("POST", "/_/functions/hello", body: "{}").status == 200, "v1 still answers")
    }

    @Test(.scratchDirectory) func aForkBombIsRefusedAtThePidsLimitAndTheInstanceSurvives() throws {
        let fixture = try PushFixture()
        try limits(fixture, ["--pids", "64"])
        try deploy(fixture)
        let before = try fixture.call("POST", "/_/functions/hello", body: "{}")
        let forks = try fixture.call("POST", "/_/functions/forks", body: "{}")
        #expect(forks.status == 200, "\(forks.text)")
        let result = forks.json?["result"] as? [String: Any] ?? forks.json ?? [:]
        let forked = result["forked"] as? Int ?? -1
        #expect(forked >= 0 && forked < 64, "\(forks.text)")
        #expect((result["refused"] as? String)?.contains("Resource temporarily unavailable") == true, "\(forks.text)")
        let after = try fixture.call("POST", "/_/functions/hello", body: "{}")
        #expect(after.status == 200)
        #expect(after.json?["instance"] as? String == before.json?["instance"] as? String, "the same instance answers after the bomb")
        #expect(fixture.gustd.map { GustdProcess.isAlive($0.pid) } == true)
    }

    @Test(.scratchDirectory) func theSandboxsTmpIsSizedByTheAppsTmpLimit() throws {
        let fixture = try PushFixture()
        let gustd = try #require(fixture.gustd)
        guard gustd.logText.contains("sandbox: bubblewrap") else {
            print("LimitsTests: the /tmp limit skipped, gustd runs without the sandbox here (the direct launcher has no private /tmp)")
            return
        }
        try limits(fixture, ["--tmp", "1M"])
        try deploy(fixture)
        let filled = try fixture.call("POST", "/_/functions/fill_tmp", body: "{}")
        #expect(filled.status == 200, "\(filled.text)")
        let result = filled.json?["result"] as? [String: Any] ?? filled.json ?? [:]
        #expect(result["written"] as? Bool == false, "2 MB do not fit a 1 MB /tmp: \(filled.text)")
        #expect((result["error"] as? String)?.contains("No space left") == true, "\(filled.text)")
    }

    @Test(.scratchDirectory) func aBusyLoopIsThrottledToItsCPUShare() throws {
        let fixture = try PushFixture()
        try limits(fixture, ["--cpu", "0.2"])
        try deploy(fixture)
        let gustd = try #require(fixture.gustd)
        let busy = try fixture.call("POST", "/_/functions/busy", body: #"{"seconds": 1}"#)
        #expect(busy.status == 200, "\(busy.text)")
        // The instance's own cgroup, named by its id: the app's zygote has one beside it, with the
        // same quota, which its import may or may not have run into.
        let ps = try GustBinaries.gust(fixture.home, ["ps", "cats", "--json"])
        let instances = (try? JSONSerialization.jsonObject(with: Data(ps.stdout.utf8))) as? [[String: Any]] ?? []
        let id = try #require(instances.first?["id"] as? String, "\(ps.output)")
        let cpu = try #require(gustd.cgroupDirectories(app: "cats")["cpu"]?.first { $0.hasSuffix("/" + id) }, "the instance has a cpu cgroup")
        #expect(try String(contentsOfFile: cpu + "/cpu.cfs_quota_us", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) == "20000")
        let stat = try String(contentsOfFile: cpu + "/cpu.stat", encoding: .utf8)
        let throttled = stat.split(separator: "\n").first { $0.hasPrefix("nr_throttled ") }.flatMap { Int($0.split(separator: " ")[1]) } ?? 0
        #expect(throttled > 0, "\(stat)")
    }

    @Test(.scratchDirectory) func theRecordsStoreStopsAtTheDiskLimitAndKeepsWhatItHas() throws {
        let fixture = try PushFixture()
        try limits(fixture, ["--disk", "1M"])
        try deploy(fixture)
        let created = try GustBinaries.gust(fixture.home, ["tokens", "create", "cats"])
        let auth = ["X-Auth-Token": created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)]
        let blob = String(repeating: "m", count: 100_000)
        var stored = 0
        var refusal: HTTPResult?
        for _ in 0..<40 {
            let write = try fixture.call("POST", "/_/records/cat", body: #"{"blob": "\#(blob)"}"#, headers: auth)
            if write.status == 201 || write.status == 200 { stored += 1 } else { refusal = write; break }
        }
        let refused = try #require(refusal, "40 writes of 100 KB fit under a 1 MB limit")
        #expect(refused.status == 507, "\(refused.text)")
        #expect((refused.json?["error"] as? String)?.contains("disk limit (1 MB)") == true, "\(refused.text)")
        #expect(stored > 0)
        let listed = try fixture.call("GET", "/_/records/cat?limit=100", headers: auth)
        #expect((listed.json?["records"] as? [Any])?.count == stored, "nothing stored was lost")
    }

    @Test(.scratchDirectory) func aBuildWhoseCacheGrowsPastTheDiskLimitFailsNamingIt() throws {
        let fixture = try PushFixture()
        try limits(fixture, ["--disk", "1M"])
        let share = try Self.cacheFillingShare(in: fixture.root, megabytes: 3)
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app)
        try work.commit("App")
        let push = try work.push(to: fixture.remote, environment: ["GUST_SHARE": share.path])
        #expect(push.status != 0)
        #expect(push.output.contains("disk limit (1 MB)"), "\(push.output)")
        #expect(push.output.contains("gust limits cats --disk"), "\(push.output)")
    }

    /// A slug over the app's disk limit fails its build, a sparse file counted as it unpacks: the slug
    /// was bounded by nothing, and is kept twice (its artifact, its unpacked release) for as long as
    /// the release is.
    @Test(.scratchDirectory) func aSlugOverTheDiskLimitFailsItsBuildAndNothingOfItIsKept() throws {
        let fixture = try PushFixture()
        try limits(fixture, ["--disk", "20M"])
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app)
        try work.write("requirements.txt", "./fill\n")
        try work.write("fill/setup.py", """
            import os
            root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the build directory
            with open(os.path.join(root, 'holes.bin'), 'wb') as f:
                f.truncate(200 << 20)  # 200 MB of holes: next to nothing on disk, all of it once unpacked
            from setuptools import setup
            setup(name='fill', version='1.0', py_modules=[])
            """)
        try work.commit("App")
        let push = try work.push(to: fixture.remote)
        #expect(push.status != 0)
        #expect(push.output.contains("The slug is ") && push.output.contains("over cats's disk limit (20 MB)"), "\(push.output)")
        let artifacts = (try? FileManager.default.contentsOfDirectory(atPath: fixture.home.artifacts.path)) ?? []
        #expect(artifacts.isEmpty, "\(artifacts)")
    }

    /// A push that would leave the repository over the app's disk limit is refused, whichever branch
    /// it goes to: git keeps what any ref names, on the server's disk, and nothing bounded it (only
    /// `main` builds, so a side branch was a free store). Refused, nothing of it stays: the app
    /// serves on, and a push under the limit goes in after it.
    @Test(.scratchDirectory) func aPushThatWouldGrowTheRepositoryPastTheDiskLimitIsRefusedOnAnyBranch() throws {
        let fixture = try PushFixture()
        try limits(fixture, ["--disk", "2M"])
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app)
        try work.commit("App")
        #expect(try work.push(to: fixture.remote).status == 0)

        try work.git("checkout", "-q", "-b", "data")
        try #require(FileHandle(forReadingAtPath: "/dev/urandom")).readData(ofLength: 3 << 20).write(to: work.directory.appendingPathComponent("blob.bin"))
        try work.commit("3 MB that do not compress")
        let push = try work.push(to: fixture.remote, "data")
        #expect(push.status != 0)
        #expect(push.output.contains("The push would leave cats's repository at "), "\(push.output)")
        #expect(push.output.contains("over its disk limit (2 MB)"), "\(push.output)")
        let refs = try Command.run("git", ["--git-dir", fixture.remote, "for-each-ref", "--format=%(refname)"])
        #expect(refs.status == 0 && !refs.stdout.contains("refs/heads/data"), "\(refs.output)")
        #expect(DiskUsage.of(URL(fileURLWithPath: fixture.remote)) < 2 << 20, "the refused objects were not kept")
        #expect(try fixture.call("POST", "/_/functions/hello", body: "{}").status == 200)

        try work.git("checkout", "-q", "main")
        try work.write("note.txt", "small")
        try work.commit("Small")
        let small = try work.push(to: fixture.remote)
        #expect(small.status == 0, "\(small.output)")
    }

    /// A build that fills its cache past the limit and then fails keeps nothing of it: the cache
    /// outlives builds, and was measured only after one that succeeded.
    @Test(.scratchDirectory) func aFailedBuildsCacheIsMeasuredAndEmptiedToo() throws {
        let fixture = try PushFixture()
        try limits(fixture, ["--disk", "1M"])
        let share = try Self.cacheFillingShare(in: fixture.root, megabytes: 3, thenFail: true)
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app)
        try work.commit("App")
        let push = try work.push(to: fixture.remote, environment: ["GUST_SHARE": share.path])
        #expect(push.status != 0)
        #expect(push.output.contains("disk limit (1 MB)") && push.output.contains("the cache was emptied"), "\(push.output)")
        let cache = fixture.home.cache(try AppName("cats"))
        let left = (try? FileManager.default.subpathsOfDirectory(atPath: cache.path)) ?? []
        #expect(!left.contains("filler.bin"), "\(left)")
    }

    @Test(.scratchDirectory) func anAppPrintingAGigabyteStaysWithinItsLogBounds() throws {
        let fixture = try PushFixture(gustdArguments: ["--function-timeout", "120", "--log-rate", "1M", "--log-max", "1M"])
        try deploy(fixture)
        _ = try fixture.call("POST", "/_/functions/hello", body: "{}")
        let port = fixture.port
        let shouting = Thread.detachedResult {
            try? HTTPClient.request(port: port, "POST", "/apps/cats/_/functions/shout", body: #"{"megabytes": 1024}"#, timeout: 140)
        }
        // gustd keeps serving meanwhile: another instance answers.
        usleep(300_000)
        let meanwhile = try fixture.call("GET", "/_/health")
        #expect(meanwhile.status == 200)
        let shout = try #require(shouting.wait(seconds: 150) ?? nil, "the shouting call answered")
        #expect(shout.status == 200, "\(shout.text)")
        let logs = fixture.home.logs
        let size = ["cats.log", "cats.log.1"].compactMap {
            (try? FileManager.default.attributesOfItem(atPath: logs.appendingPathComponent($0).path)[.size] as? Int) ?? nil
        }.reduce(0, +)
        #expect(size < 3 << 20, "the app's log files hold \(size) bytes")
        let tail = try GustBinaries.gust(fixture.home, ["logs", "cats", "-n", "2000"])
        #expect(tail.stdout.contains("lines dropped: over 1 MB/s"), "\(tail.stdout.suffix(2000))")
    }

    /// A share whose Python compile step first writes `megabytes` into the cache dir, then runs the real one.
    /// The Python buildpack is a copy (a sandboxed build sees its buildpack at /buildpack, no host path),
    /// its own compile kept beside the wrapper as `compile-real`.
    /// `thenFail`: the compile step fails after filling the cache, as a build that means to keep it can.
    static func cacheFillingShare(in root: URL, megabytes: Int, thenFail: Bool = false) throws -> URL {
        let share = root.appendingPathComponent("share")
        let real = GustBinaries.sourceRoot
        let fm = FileManager.default
        try fm.createDirectory(at: share.appendingPathComponent("buildpacks"), withIntermediateDirectories: true)
        try fm.createSymbolicLink(at: share.appendingPathComponent("hooks"), withDestinationURL: real.appendingPathComponent("hooks"))
        try fm.createSymbolicLink(at: share.appendingPathComponent("buildpacks/node"), withDestinationURL: real.appendingPathComponent("buildpacks/node"))
        try fm.copyItem(at: real.appendingPathComponent("buildpacks/python"), to: share.appendingPathComponent("buildpacks/python"))
        let python = share.appendingPathComponent("buildpacks/python/bin")
        let compile = python.appendingPathComponent("compile")
        try fm.moveItem(at: compile, to: python.appendingPathComponent("compile-real"))
        try """
            #!/bin/sh
            head -c \(megabytes * 1024 * 1024) /dev/urandom > "$2/filler.bin"
            \(thenFail ? "exit 3" : "exec \"$(dirname \"$0\")/compile-real\" \"$@\"")

            """.write(to: compile, atomically: true, encoding: .utf8)
        try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: compile.path)
        return share
    }
}

extension Thread {
    /// Runs `body` on a thread of its own; `wait` returns its result (bounded).
    static func detachedResult<T: Sendable>(_ body: @escaping @Sendable () -> T) -> ThreadResult<T> {
        let result = ThreadResult<T>()
        Thread.detachNewThread { result.set(body()) }
        return result
    }
}

final class ThreadResult<T: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var value: T?

    func set(_ value: T) {
        condition.lock()
        self.value = value
        condition.broadcast()
        condition.unlock()
    }

    func wait(seconds: Double) -> T? {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date().addingTimeInterval(seconds)
        while value == nil, condition.wait(until: deadline) {}
        return value
    }
}
