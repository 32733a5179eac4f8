@testable import GustDaemon
import Testing

/// When a release's zygote stops for idleness, and when its instances stop
/// being forked: instants of the tests' choosing, no processes, no sleeps.
struct ZygoteLifecycleTests {
    let start = ContinuousClock.now
    let idle = Duration.seconds(40)

    @Test func aZygoteThatNeverForkedIsDueZygoteIdleAfterItStarted() {
        var lifecycle = ZygoteLifecycle()
        #expect(lifecycle.stopDue(zygoteIdle: idle) == nil, "no zygote, nothing to stop")
        lifecycle.started(now: start)
        #expect(lifecycle.stopDue(zygoteIdle: idle) == start + idle)
    }

    @Test func aRunningForkKeepsItAndTheLastExitStartsTheClock() {
        var lifecycle = ZygoteLifecycle()
        lifecycle.started(now: start)
        lifecycle.forked()
        lifecycle.forked()
        #expect(lifecycle.stopDue(zygoteIdle: idle) == nil)
        lifecycle.forkExited(now: start + .seconds(5))
        #expect(lifecycle.stopDue(zygoteIdle: idle) == nil, "one fork still runs")
        lifecycle.forkExited(now: start + .seconds(9))
        #expect(lifecycle.stopDue(zygoteIdle: idle) == start + .seconds(9) + idle)
        lifecycle.forked()
        #expect(lifecycle.stopDue(zygoteIdle: idle) == nil, "a new fork cancels the stop")
    }

    @Test func anExitedZygoteIsNotDueAndForksOfItStillCount() {
        var lifecycle = ZygoteLifecycle()
        lifecycle.started(now: start)
        lifecycle.forked()
        lifecycle.zygoteExited()
        #expect(!lifecycle.isResident)
        lifecycle.started(now: start + .seconds(1))
        #expect(lifecycle.stopDue(zygoteIdle: idle) == nil, "the first zygote's fork still runs")
        lifecycle.forkExited(now: start + .seconds(2))
        #expect(lifecycle.stopDue(zygoteIdle: idle) == start + .seconds(2) + idle)
    }

    @Test func anUnforkableReleaseIsBypassedForGood() {
        var lifecycle = ZygoteLifecycle()
        #expect(lifecycle.forksInstances)
        lifecycle.unforkable("the app started 1 thread(s) at import (poller)")
        #expect(!lifecycle.forksInstances)
        #expect(lifecycle.bypassed == "the app started 1 thread(s) at import (poller)")
        #expect(lifecycle.stopDue(zygoteIdle: idle) == nil)
    }

    @Test func failuresInARowBypassAndAForkInBetweenResetsTheCount() {
        var lifecycle = ZygoteLifecycle()
        var bypassing = [lifecycle.forkFailed("its zygote exited before it forked"), lifecycle.forkFailed("its zygote exited")]
        lifecycle.forked()
        bypassing += [lifecycle.forkFailed("a"), lifecycle.forkFailed("b")]
        #expect(bypassing == [false, false, false, false], "a fork in between starts the count again")
        #expect(lifecycle.forksInstances)
        let third = lifecycle.forkFailed("c")
        #expect(third, "the third in a row bypasses")
        #expect(!lifecycle.forksInstances)
        #expect(lifecycle.bypassed?.contains("3 times in a row (last: c)") == true)
        let fourth = lifecycle.forkFailed("d")
        #expect(!fourth, "bypassed once")
    }

    @Test func zygoteIdleIsFourTimesTheIdle() {
        #expect(ZygoteLifecycle.zygoteIdle(forIdle: .seconds(300)) == .seconds(1200))
        #expect(ZygoteLifecycle.zygoteIdle(forIdle: .seconds(1)) == .seconds(4))
    }
}
