@testable import GustDaemon
import Testing

/// Deadlines in nanoseconds: a duration past Int64's nanoseconds saturates instead of trapping gustd.
@Suite struct DurationNanosecondsTests {
    @Test func ordinaryDurationsAreExact() {
        #expect(Duration.milliseconds(1500).nanoseconds == 1_500_000_000)
        #expect(Duration.nanoseconds(7).nanoseconds == 7)
        #expect(Duration.seconds(-2).nanoseconds == -2_000_000_000)
    }

    @Test func durationsPastInt64Saturate() {
        #expect(Duration.seconds(Int64.max).nanoseconds == .max)
        #expect(Duration.seconds(10_000_000_000).nanoseconds == .max)
        #expect(Duration.seconds(Int64.min).nanoseconds == .min)
    }
}
