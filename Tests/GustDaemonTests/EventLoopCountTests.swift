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
}
