@testable import GustDaemon
import Testing

/// `--event-loops` read from the raw command line, before ArgumentParser runs.
@Suite struct EventLoopCountTests {
    @Test func readsTheOptionInEitherSpelling() {
        #expect(EventLoopCount.requested(in: ["--home", "/h", "--event-loops", "1"]) == 1)
        #expect(EventLoopCount.requested(in: ["--event-loops=3", "--http", "127.0.0.1:0"]) == 3)
        #expect(EventLoopCount.requested(in: ["--event-loops", "2", "--event-loops=4"]) == 4, "the last one, as ArgumentParser takes it")
    }

    @Test func leavesNIOsDefaultForAnythingElse() {
        #expect(EventLoopCount.requested(in: []) == nil)
        #expect(EventLoopCount.requested(in: ["--home", "/h"]) == nil)
        for bad in ["0", "-1", "257", "two", ""] {
            #expect(EventLoopCount.requested(in: ["--event-loops", bad]) == nil, "\(bad): ArgumentParser's check refuses it")
        }
        #expect(EventLoopCount.requested(in: ["--event-loops"]) == nil)
        #expect(EventLoopCount.requested(in: ["--", "--event-loops", "1"]) == nil, "after --, it is no option")
        #expect(EventLoopCount.requested(in: ["--event-loopsx", "1"]) == nil)
    }

    @Test func byDefaultHalfTheCoresServe() {
        // The instances run on the same cores and need a large share of each call's CPU.
        for (cores, loops) in [(1, 1), (2, 1), (3, 1), (4, 2), (8, 4), (64, 32), (1024, 256)] {
            #expect(EventLoopCount.chosen(in: ["--home", "/h"], cores: cores) == loops, "\(cores) cores")
        }
        #expect(EventLoopCount.chosen(in: [], cores: 0) == 1, "a core count that cannot be read still gives a loop")
        #expect(EventLoopCount.chosen(in: ["--event-loops", "2"], cores: 2) == 2, "asked for, it is taken")
        #expect(EventLoopCount.chosen(in: ["--event-loops", "0"], cores: 8) == 4, "a bad value is ArgumentParser's to refuse")
    }
}
