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
}
