import NIOCore
import Synchronization

/// How whoever relays a streamed answer holds back its instance while the client is slow: after
/// `pause`, gustd reads no more of the answer from the instance's connection until `resume`. A
/// client that reads slowly, or not at all, then leaves the rest of the answer in the instance,
/// whose writes wait as they would behind any slow reader, instead of in gustd's memory (where a
/// few such clients of an app that streams could fill it).
///
/// Both may be called from any thread, any number of times; they take effect on the
/// connection's event loop, and after the answer has ended they do nothing.
struct AnswerFlow: Sendable {
    private let reading: @Sendable (_ paused: Bool) -> Void

    init(_ reading: @escaping @Sendable (_ paused: Bool) -> Void) {
        self.reading = reading
    }

    func pause() { reading(true) }
    func resume() { reading(false) }
}

/// The bytes of a streamed answer that wait between the instance's connection and Hummingbird's
/// writer (which writes as fast as the client reads): past `high`, the instance is held back
/// (`AnswerFlow.pause`) until the writer has taken them down to `low`.
final class ChunkBacklog: Sendable {
    private let waiting = Mutex((bytes: 0, paused: false, abandoned: false))
    private let flow: AnswerFlow
    private let high: Int
    private let low: Int

    init(flow: AnswerFlow, high: Int = 256 * 1024, low: Int = 64 * 1024) {
        self.flow = flow
        self.high = high
        self.low = low
    }

    /// A chunk came from the instance.
    func added(_ bytes: Int) {
        let pause = waiting.withLock { state in
            state.bytes += bytes
            guard state.bytes > high, !state.paused, !state.abandoned else { return false }
            state.paused = true
            return true
        }
        if pause { flow.pause() }
    }

    /// The writer took a chunk.
    func taken(_ bytes: Int) {
        let resume = waiting.withLock { state in
            state.bytes -= bytes
            guard state.bytes <= low, state.paused else { return false }
            state.paused = false
            return true
        }
        if resume { flow.resume() }
    }

    /// The writer stopped taking chunks (its client left): the instance is let go for good, the
    /// rest of its answer read and dropped, so that the call ends now rather than at its time limit.
    func abandoned() {
        let resume = waiting.withLock { state in
            state.abandoned = true
            defer { state.paused = false }
            return state.paused
        }
        if resume { flow.resume() }
    }
}
