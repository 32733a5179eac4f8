import GustCore
import Testing

/// How scale rules are read and said back: `--idle` as written, and the rules as people write them.
@Suite struct ScaleChangeTests {
    @Test func idleIsSaidBackAsItIsWritten() throws {
        for (seconds, text) in [(1, "1s"), (45, "45s"), (60, "1m"), (90, "1m30s"), (300, "5m"), (3600, "1h"), (5400, "1h30m"), (3661, "1h1m1s"), (86_400, "24h")] {
            let settings = ScaleSettings(min: 1, max: 4, concurrency: 10, idleSeconds: seconds)
            #expect(settings.idleText == text)
            #expect(try ScaleChange.seconds(text) == seconds, "\(text) reads back as it was written")
        }
        #expect(ScaleSettings.standard.activityText == "min 1, max 4, concurrency 10, idle 5m")
    }

    /// An amount too large to multiply is "too long", not a crash of the command, nor "not a duration".
    @Test(arguments: ["999999999999999999h", "9000h", "99999999999999999999999m"])
    func anIdleTooLongSaysTheRange(_ text: String) {
        #expect(throws: GustError("'\(text)' is too long: --idle must be between 1s and 24h.")) { try ScaleChange.seconds(text) }
    }

    @Test(arguments: ["", "5", "5 minutes", "@every 5m", "-5m", "m"])
    func anIdleThatIsNotADurationSaysHowToWriteOne(_ text: String) {
        #expect(throws: GustError("'\(text)' is not a duration: write 30s, 5m, 1h or 1h30m.")) { try ScaleChange.seconds(text) }
    }

    @Test func anIdleOfZeroIsOutOfRange() {
        #expect(throws: GustError("--idle must be between 1s and 24h.")) {
            try ScaleChange(idle: "0s").applied(to: .standard, ceilings: nil)
        }
    }

    /// The admin's ceiling bounds what a scoped key keeps running: a `--min` over it would hold
    /// that many instances up for good, whatever `--max` says.
    @Test func aScopedMinOverTheCeilingIsRefusedAsAMaxIs() throws {
        let ceilings = LimitCeilings(maxInstances: 2)
        #expect(throws: GustError("--min 4 is over the ceiling of 2 instances an admin set for scoped keys. Ask an admin.")) {
            try ScaleChange(min: 4).applied(to: .standard, ceilings: ceilings)
        }
        #expect(throws: GustError("--max 3 is over the ceiling of 2 instances an admin set for scoped keys. Ask an admin.")) {
            try ScaleChange(max: 3).applied(to: .standard, ceilings: ceilings)
        }
        #expect(try ScaleChange(min: 2, max: 2).applied(to: .standard, ceilings: ceilings).min == 2)
        #expect(try ScaleChange(min: 4).applied(to: .standard, ceilings: nil).min == 4, "an admin is not bound by it")
    }
}
