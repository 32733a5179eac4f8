import Foundation
import GustCore
import GustTesting
import Testing

/// `gust limits` over a real sshd: a scoped key reads its app's limits and sets them only
/// under the ceilings an admin set, which also cap its `scale --max` (issue 12, item 4).
@Suite(.serialized, .timeLimit(.minutes(20)))
struct SSHLimitsTests {
    @Test(.scratchDirectory) func aScopedKeySetsLimitsOnlyUnderTheAdminsCeilings() throws {
        let fixture = try SSHFixture()
        #expect(try fixture.gust(["apps", "create", "cats"]).status == 0)
        #expect(try fixture.gust(["apps", "create", "dogs"]).status == 0)
        let bob = try fixture.keyPair("bob")
        try fixture.addKey("bob", bob, ["--app", "cats"])
        let ceilings = try fixture.gust(["limits", "--ceilings", "--memory", "512M", "--cpu", "1", "--max-instances", "3"])
        #expect(ceilings.status == 0, "\(ceilings.output)")
        let store = try Store(home: fixture.home)
        let cats = try AppName("cats")

        let shown = try fixture.ssh("limits cats", as: bob)
        #expect(shown.status == 0, "\(shown.output)")
        #expect(shown.stdout.contains("cats: memory 512M, cpu 1, pids 256, tmp 64M, disk 1G"), "\(shown.output)")

        let under = try fixture.ssh("limits cats --memory 256M --cpu 0.5 --pids 64 --json", as: bob)
        #expect(under.status == 0, "\(under.output)")
        #expect(try store.limits(cats) == AppLimits(memory: 256 << 20, cpuMillis: 500, pids: 64))
        let json = try JSONSerialization.jsonObject(with: Data(under.stdout.utf8)) as? [String: Any]
        #expect((json?["limits"] as? [String: Any])?["memory"] as? Int == 256 << 20, "\(under.stdout)")

        let over = try fixture.ssh("limits cats --memory 2G", as: bob)
        #expect(over.status != 0)
        #expect(over.stderr.contains("--memory 2G (ceiling 512M)"), "\(over.output)")
        #expect(try store.limits(cats).memory == 256 << 20, "a refused change changes nothing")

        let scale = try fixture.ssh("scale cats --max 4", as: bob)
        #expect(scale.status != 0)
        #expect(scale.stderr.contains("over the ceiling of 3 instances"), "\(scale.output)")
        #expect(try fixture.ssh("scale cats --max 3", as: bob).status == 0)

        let raise = try fixture.ssh("limits --ceilings --memory 8G", as: bob)
        #expect(raise.status != 0)
        #expect(raise.stderr.contains("Only admin keys may see or set the ceilings"), "\(raise.output)")
        #expect(try store.limitCeilings().limits.memory == 512 << 20)

        let other = try fixture.ssh("limits dogs --memory 128M", as: bob)
        #expect(other.status != 0 && other.stderr.contains("may not use app 'dogs'"), "\(other.output)")

        // An admin is not capped.
        #expect(try fixture.gust(["limits", "cats", "--memory", "2G"]).status == 0)
        #expect(try store.limits(cats).memory == 2 << 30)
    }

    /// Over SSH, git itself cuts a push's pack stream at the app's disk limit, so the quarantine
    /// that pre-receive measures never grows past it: the pusher's bytes stopped arriving at the
    /// limit, not after the whole pack was written to the server's disk.
    @Test(.scratchDirectory) func aPackOverTheDiskLimitIsCutWhileItArrives() throws {
        let fixture = try SSHFixture()
        let gustd = try GustdProcess(home: fixture.home)
        defer { gustd.stop() }
        #expect(try fixture.gust(["apps", "create", "cats"]).status == 0)
        #expect(try fixture.gust(["limits", "cats", "--disk", "1M"]).status == 0)
        let bob = try fixture.keyPair("bob")
        try fixture.addKey("bob", bob, ["--app", "cats"])
        let work = try fixture.workspace("cats")
        try #require(FileHandle(forReadingAtPath: "/dev/urandom")).readData(ofLength: 3 << 20).write(to: work.directory.appendingPathComponent("blob.bin"))
        try work.commit("3 MB that do not compress")

        let push = try fixture.push(work, app: "cats", as: bob)
        #expect(push.status != 0)
        #expect(push.stderr.contains("pack exceeds maximum allowed size"), "\(push.output)")
        #expect(!push.stderr.contains("app detected"), "no build ran")
        let repository = fixture.home.repository(try AppName("cats"))
        #expect(DiskUsage.of(repository) < 1 << 20, "nothing of the pack was kept")
    }
}
