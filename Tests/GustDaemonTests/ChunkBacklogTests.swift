@testable import GustDaemon
import Synchronization
import Testing

/// The bytes of a streamed answer waiting for Hummingbird's writer: the instance is held back
/// past the high mark and let go at the low one, once each way.
@Suite struct ChunkBacklogTests {
    @Test func pausesPastTheHighMarkAndResumesAtTheLowOne() {
        let asked = Mutex<[Bool]>([])
        let backlog = ChunkBacklog(flow: AnswerFlow { paused in asked.withLock { $0.append(paused) } }, high: 100, low: 20)
        backlog.added(60)
        backlog.added(40)
        #expect(asked.withLock { $0 } == [], "at the mark, not past it")
        backlog.added(10)
        backlog.added(50)
        #expect(asked.withLock { $0 } == [true], "once")
        backlog.taken(60)
        #expect(asked.withLock { $0 } == [true], "100 still wait")
        backlog.taken(80)
        #expect(asked.withLock { $0 } == [true, false])
        backlog.taken(20)
        backlog.added(5)
        #expect(asked.withLock { $0 } == [true, false])
    }

    @Test func anAbandonedBacklogLetsTheInstanceGoForGood() {
        let asked = Mutex<[Bool]>([])
        let backlog = ChunkBacklog(flow: AnswerFlow { paused in asked.withLock { $0.append(paused) } }, high: 100, low: 20)
        backlog.added(150)
        backlog.abandoned()
        #expect(asked.withLock { $0 } == [true, false])
        backlog.added(500)
        #expect(asked.withLock { $0 } == [true, false], "never held back again")
    }
}
