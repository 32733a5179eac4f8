import Foundation
import GustCore
import GustTesting
import Testing

/// What `gust` prints for values that parse but do not hold: the subcommand's own usage, not
/// `gust <subcommand>`, and sizes without their unit refused rather than read as bytes.
@Suite(.timeLimit(.minutes(20)))
struct CommandErrorTests {
    @Test(.scratchDirectory) func aValueThatDoesNotHoldShowsItsCommandsUsage() throws {
        let fixture = try PushFixture(startGustd: false)
        let scale = try GustBinaries.gust(fixture.home, ["scale", "cats", "--min", "5", "--max", "2"])
        #expect(scale.status == 64, "a usage error, as ArgumentParser's own: \(scale.output)")
        #expect(scale.stderr.contains("Error: --min (5) must not be above --max (2)."), "\(scale.output)")
        #expect(scale.stderr.contains("Usage: gust scale "), "\(scale.output)")
        #expect(scale.stderr.contains("See 'gust scale --help' for more information."), "\(scale.output)")
        #expect(!scale.stderr.contains("gust <subcommand>"), "\(scale.output)")

        let nested = try GustBinaries.gust(fixture.home, ["apps", "destroy", "cats"])
        #expect(nested.status == 64, "\(nested.output)")
        #expect(nested.stderr.contains("Usage: gust apps destroy "), "\(nested.output)")
        #expect(nested.stderr.contains("See 'gust apps destroy --help' for more information."), "\(nested.output)")
        #expect(try Store(home: fixture.home).app(try AppName("cats")) != nil, "nothing was destroyed")
    }

    @Test(.scratchDirectory) func aLimitWithoutItsUnitIsRefusedAndNothingChanges() throws {
        let fixture = try PushFixture(startGustd: false)
        let memory = try GustBinaries.gust(fixture.home, ["limits", "cats", "--memory", "256"])
        #expect(memory.status != 0)
        #expect(memory.stderr.contains("'256' is 256 bytes, too little memory for an instance (at least 16M): write the unit, as in 256M or 1G."), "\(memory.output)")
        #expect(try Store(home: fixture.home).limits(try AppName("cats")) == AppLimits())
        #expect(try GustBinaries.gust(fixture.home, ["limits", "cats", "--memory", "256M"]).status == 0)
        #expect(try Store(home: fixture.home).limits(try AppName("cats")).memory == 256 << 20)
    }

    /// gustd's time limits become whole milliseconds: `inf` or `1e300` trapped gustd as it started.
    @Test(.scratchDirectory) func gustdRefusesATimeLimitNoDurationHolds() throws {
        let home = ScratchDirectory.current.appendingPathComponent("home").path
        for (option, value) in [("--websocket-idle-timeout", "inf"), ("--function-timeout", "1e300"), ("--build-timeout", "nan"), ("--idle-timeout", "0")] {
            let started = try Command.run(GustBinaries.gustd, ["--home", home, option, value])
            #expect(started.status == 64, "\(option) \(value): a usage error, not a crash: \(started.output)")
            #expect(started.stderr.contains("Time limits must be positive, in seconds, and at most 366 days"), "\(started.output)")
        }
        for name in ["console example.test", "*.example.test", "10.0.0.1"] {
            let started = try Command.run(GustBinaries.gustd, ["--home", home, "--reserve-domain", name])
            #expect(started.status == 64 && started.stderr.contains("--reserve-domain takes a domain name"), "\(name): \(started.output)")
        }
    }
}
