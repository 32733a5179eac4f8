@testable import GustDaemon
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

/// The slot a lane call waiting for an instance registers in (`LaneCall.wait`): its client's going
/// lets it go once, a call told it waited no longer is, and a client already gone refuses the wait.
@Suite struct ClientDisconnectHandlerTests {
    func channel() throws -> (EmbeddedChannel, ClientDisconnectHandler) {
        let handler = ClientDisconnectHandler()
        let channel = EmbeddedChannel(handler: handler)
        return (channel, handler)
    }

    @Test func aWaitingCallIsLetGoOnceWhenItsClientLeaves() throws {
        let (channel, handler) = try channel()
        let left = Atomic(0)
        #expect(handler.laneWaits { left.add(1, ordering: .relaxed) } != nil)
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        channel.pipeline.fireChannelInactive()
        #expect(left.load(ordering: .relaxed) == 1)
        #expect(handler.laneWaits {} == nil, "the client has gone: the next call must not wait")
    }

    @Test func aCallThatNoLongerWaitsIsNotLetGo() throws {
        let (channel, handler) = try channel()
        let left = Mutex<[String]>([])
        let first = try #require(handler.laneWaits { left.withLock { $0.append("first") } })
        handler.laneWaited(first)
        let second = try #require(handler.laneWaits { left.withLock { $0.append("second") } })
        handler.laneWaited(first)  // late news of the first call: the second still waits
        #expect(first != second)
        channel.pipeline.fireChannelInactive()
        #expect(left.withLock { $0 } == ["second"])
    }
}
