import Foundation
import GustCore
import GustTesting
import Testing

/// `gust scale` over a real sshd: a scoped key reads and changes its own app's rules only.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct SSHScaleTests {
    @Test(.scratchDirectory) func aScopedKeyScalesItsAppAndNoOther() throws {
        let fixture = try SSHFixture()
        #expect(try fixture.gust(["apps", "create", "cats"]).status == 0)
        #expect(try fixture.gust(["apps", "create", "dogs"]).status == 0)
        let bob = try fixture.keyPair("bob")
        try fixture.addKey("bob", bob, ["--app", "cats"])

        let shown = try fixture.ssh("scale cats", as: bob)
        #expect(shown.status == 0, "\(shown.output)")
        #expect(shown.stdout.contains("cats: min 1, max 4"), "\(shown.output)")

        let changed = try fixture.ssh("scale cats --min 0 --max 3 --idle 2m --json", as: bob)
        #expect(changed.status == 0, "\(changed.output)")
        let store = try Store(home: fixture.home)
        #expect(try store.scale(try AppName("cats")) == ScaleSettings(min: 0, max: 3, concurrency: 10, idleSeconds: 120))

        let other = try fixture.ssh("scale dogs --max 8", as: bob)
        #expect(other.status != 0)
        #expect(other.stderr.contains("may not use app 'dogs'"), "\(other.output)")
        #expect(try store.scale(try AppName("dogs")) == .standard)

        let bad = try fixture.ssh("scale cats --min 5 --max 2", as: bob)
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--min (5) must not be above --max (2)"), "\(bad.output)")
        let tooMany = try fixture.ssh("scale cats --max 1000", as: bob)
        #expect(tooMany.status != 0 && tooMany.stderr.contains("--max must be between 1 and \(ScaleSettings.maxInstances)"), "\(tooMany.output)")
        #expect(try store.scale(try AppName("cats")).max == 3, "refused changes leave the rules as they were")
    }
}
