import Foundation
import Synchronization
import Testing

@testable import GustDaemon

/// `HolderMakings` with fake holders and makers that block on semaphores: a start that finds its
/// holder being made waits for that making (none made twice); a background making runs ahead of
/// any start, bounded, and a start uses what it made; a failed one is not fatal (the next start
/// makes one); an app no longer served while its holder is being made gets no holder (the one
/// made is stopped) and a queued one is not made.
@Suite struct HolderMakingsTests {
    final class FakeHolder: MadeHolder {
        let name: String
        private let stopped = Atomic(false)
        init(_ name: String) { self.name = name }
        var isAlive: Bool { !stopped.load(ordering: .relaxed) }
        var wasStopped: Bool { stopped.load(ordering: .relaxed) }
        func stop() { stopped.store(true, ordering: .relaxed) }
    }

    struct Failure: Error {}

    /// A maker that counts its makings, says when one began and blocks until let go.
    final class GatedMaker: Sendable {
        let made = Atomic(0)
        let began = DispatchSemaphore(value: 0)
        let gate = DispatchSemaphore(value: 0)
        let fails: Bool
        init(fails: Bool = false) { self.fails = fails }

        func make(_ name: String) throws -> FakeHolder {
            made.add(1, ordering: .relaxed)
            began.signal()
            #expect(gate.wait(timeout: .now() + 10) == .success, "the test let the making go")
            if fails { throw Failure() }
            return FakeHolder(name)
        }

        func waitBegun() -> Bool { began.wait(timeout: .now() + 10) == .success }
    }

    /// Runs `body` on a thread of its own; the returned semaphore is signalled when it is done.
    static func onThread(_ body: @escaping @Sendable () -> Void) -> DispatchSemaphore {
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            body()
            done.signal()
        }
        return done
    }

    static func eventually(_ condition: () -> Bool) -> Bool {
        for _ in 0..<1_000 where !condition() { usleep(1_000) }
        return condition()
    }

    @Test func aStartThatFindsItsHolderBeingMadeWaitsForThatMaking() throws {
        let makings = HolderMakings<String, FakeHolder>(concurrency: 1)
        let maker = GatedMaker()
        let first = Mutex<FakeHolder?>(nil), second = Mutex<FakeHolder?>(nil)
        let firstDone = Self.onThread { first.withLock { $0 = makings.holder("cats") { try maker.make("one") } } }
        #expect(maker.waitBegun())
        let secondDone = Self.onThread { second.withLock { $0 = makings.holder("cats") { try maker.make("two") } } }
        #expect(secondDone.wait(timeout: .now() + 0.05) == .timedOut, "the second start waits")
        maker.gate.signal()
        #expect(firstDone.wait(timeout: .now() + 10) == .success && secondDone.wait(timeout: .now() + 10) == .success)
        #expect(maker.made.load(ordering: .relaxed) == 1, "made once")
        #expect(first.withLock { $0?.name } == "one" && second.withLock { $0?.name } == "one")
        #expect(makings.holders["cats"]?.name == "one")
    }

    @Test func aPreparedHolderIsMadeBeforeAnyStartAndTheFirstStartUsesIt() throws {
        let makings = HolderMakings<String, FakeHolder>(concurrency: 1)
        let maker = GatedMaker()
        makings.prepare("cats") { try maker.make("ahead") }
        #expect(maker.waitBegun(), "made with no start asking")
        #expect(makings.isPending("cats"))
        // A start now waits for the background making instead of making a second one.
        let got = Mutex<FakeHolder?>(nil)
        let done = Self.onThread { got.withLock { $0 = makings.holder("cats") { try maker.make("start") } } }
        maker.gate.signal()
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(got.withLock { $0?.name } == "ahead")
        #expect(maker.made.load(ordering: .relaxed) == 1)
        // Preparing again with a live holder makes nothing.
        makings.prepare("cats") { try maker.make("again") }
        #expect(!makings.isPending("cats") && maker.made.load(ordering: .relaxed) == 1)
        #expect(makings.holder("cats") { try maker.make("later") }?.name == "ahead")
    }

    @Test func everyStartWaitingOnOneMakingGetsItsOneHolder() throws {
        // Waits far longer than the test's: each waiter is woken by the result, none by its timeout.
        let makings = HolderMakings<String, FakeHolder>(concurrency: 1, waitLimit: .seconds(60))
        let maker = GatedMaker()
        makings.prepare("cats") { try maker.make("ahead") }
        #expect(maker.waitBegun())
        let got = Mutex<[String?]>([])
        let starts = (0..<4).map { index in
            Self.onThread {
                let holder = makings.holder("cats") { try maker.make("start \(index)") }  // not under `got`'s lock: all wait at once
                got.withLock { $0.append(holder?.name) }
            }
        }
        for done in starts { #expect(done.wait(timeout: .now() + 0.05) == .timedOut, "each start waits for the making") }
        maker.gate.signal()
        for done in starts { #expect(done.wait(timeout: .now() + 10) == .success) }
        #expect(got.withLock { $0 } == Array(repeating: "ahead", count: 4), "every waiter got the one holder")
        #expect(maker.made.load(ordering: .relaxed) == 1)
    }

    @Test func backgroundMakingsAreBoundedAndAStartDoesNotWaitForAQueuedOne() throws {
        let makings = HolderMakings<String, FakeHolder>(concurrency: 1)
        let maker = GatedMaker()
        makings.prepare("cats") { try maker.make("cats") }
        makings.prepare("dogs") { try maker.make("dogs") }
        #expect(maker.waitBegun())
        // One at a time: dogs' waits in the queue while cats' is made.
        #expect(maker.began.wait(timeout: .now() + 0.05) == .timedOut)
        #expect(maker.made.load(ordering: .relaxed) == 1)
        // dogs' first start makes its own at once (not behind cats'); the queue then skips dogs.
        let own = GatedMaker()
        own.gate.signal()
        #expect(makings.holder("dogs") { try own.make("dogs-start") }?.name == "dogs-start")
        maker.gate.signal()
        #expect(Self.eventually { makings.holders.count == 2 && !makings.isPending("dogs") })
        #expect(maker.made.load(ordering: .relaxed) == 1, "dogs' queued making was skipped")
        #expect(makings.holders["dogs"]?.name == "dogs-start")
    }

    @Test func aFailedMakingIsNotFatalTheNextStartMakesOne() throws {
        let failures = Mutex<[(String, Bool)]>([])
        let makings = HolderMakings<String, FakeHolder>(concurrency: 1) { key, _, inBackground in
            failures.withLock { $0.append((key, inBackground)) }
        }
        let failing = GatedMaker(fails: true)
        makings.prepare("cats") { try failing.make("x") }
        #expect(failing.waitBegun())
        // A start waiting on the failed making gets none (it uses bwrap) ...
        let got = Mutex<FakeHolder?>(FakeHolder("unset"))
        let done = Self.onThread { got.withLock { $0 = makings.holder("cats") { try failing.make("y") } } }
        #expect(done.wait(timeout: .now() + 0.05) == .timedOut)
        failing.gate.signal()
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(got.withLock { $0 } == nil)
        #expect(failures.withLock { $0.map(\.0) == ["cats"] && $0.map(\.1) == [true] }, "said, as a background making")
        // ... and the next start makes one.
        let working = GatedMaker()
        working.gate.signal()
        #expect(makings.holder("cats") { try working.make("made") }?.name == "made")
    }

    @Test func anAppNoLongerServedWhileItsHolderIsMadeGetsNoneAndWhatWasMadeIsStopped() throws {
        let makings = HolderMakings<String, FakeHolder>(concurrency: 1)
        let maker = GatedMaker()
        makings.prepare("cats") { try maker.make("cats") }
        makings.prepare("dogs") { try maker.make("dogs") }
        #expect(maker.waitBegun())
        let got = Mutex<FakeHolder?>(FakeHolder("unset"))
        let done = Self.onThread { got.withLock { $0 = makings.holder("cats") { try maker.make("start") } } }
        #expect(done.wait(timeout: .now() + 0.05) == .timedOut)
        makings.stop { _ in true }  // cats destroyed (its making under way), dogs too (still queued)
        maker.gate.signal()
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(got.withLock { $0 } == nil, "the waiting start uses bwrap")
        #expect(Self.eventually { !makings.isPending("cats") })
        #expect(makings.holders.isEmpty, "nothing kept: \(makings.holders)")
        #expect(maker.began.wait(timeout: .now() + 0.05) == .timedOut, "dogs' queued making never ran")
        #expect(maker.made.load(ordering: .relaxed) == 1)
    }

    @Test func aHolderMadeAfterStopAllIsStoppedAndNoneIsMadeAfter() throws {
        let makings = HolderMakings<String, FakeHolder>(concurrency: 1)
        let maker = GatedMaker()
        let made = Mutex<FakeHolder?>(nil)
        makings.prepare("cats") {
            let holder = try maker.make("cats")
            made.withLock { $0 = holder }
            return holder
        }
        #expect(maker.waitBegun())
        makings.stopAll()
        maker.gate.signal()
        #expect(Self.eventually { made.withLock { $0?.wasStopped } == true }, "stopped once made")
        #expect(makings.holder("cats") { try maker.make("after") } == nil)
        makings.prepare("dogs") { try maker.make("dogs") }
        #expect(!makings.isPending("dogs") && maker.made.load(ordering: .relaxed) == 1)
    }

    @Test func aDeadHolderIsReplacedAndADiscardedOneStopped() throws {
        let makings = HolderMakings<String, FakeHolder>(concurrency: 1)
        let first = try #require(makings.holder("cats") { FakeHolder("one") })
        first.stop()
        let second = try #require(makings.holder("cats") { FakeHolder("two") })
        #expect(second.name == "two")
        makings.discard(second)
        #expect(second.wasStopped && makings.holders.isEmpty)
    }
}
