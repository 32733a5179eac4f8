import Foundation
import GustCore
import GustTesting
import Testing

/// What `gust config set` says about pairs it cannot take.
@Suite(.timeLimit(.minutes(20)))
struct ConfigCommandTests {
    @Test(.scratchDirectory) func aPairWithoutANameOrValueIsNamedAsWritten() throws {
        let fixture = try PushFixture(startGustd: false)
        let noName = try GustBinaries.gust(fixture.home, ["config", "set", "cats", "=x"])
        #expect(noName.status != 0)
        #expect(noName.stderr.contains("'=x' has no name: write KEY=value."), "\(noName.output)")
        let noValue = try GustBinaries.gust(fixture.home, ["config", "set", "cats", "KEY"])
        #expect(noValue.status != 0)
        #expect(noValue.stderr.contains("'KEY' has no value: write KEY=value."), "\(noValue.output)")
        let reserved = try GustBinaries.gust(fixture.home, ["config", "set", "cats", "UID=1000"])
        #expect(reserved.status != 0)
        #expect(reserved.stderr.contains("'UID' is reserved"), "\(reserved.output)")
        let config = try GustBinaries.gust(fixture.home, ["config", "cats", "--json"])
        #expect(config.stdout.filter { !$0.isWhitespace } == "{}", "\(config.output)")
    }
}
