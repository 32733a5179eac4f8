@testable import GustDaemon
import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Testing

/// How a draining listener's connections end (`QuiesceGate`): one between
/// requests waits for its next request, which is answered with
/// `Connection: close`; one that stays quiet is let go after the grace.
struct QuiesceGateTests {
    /// Counts the quiesce events that reach HummingbirdCore's state handler, which sits after the gate.
    final class Quiesces: ChannelInboundHandler {
        typealias InboundIn = HTTPRequestPart
        var count = 0
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if event is ChannelShouldQuiesceEvent { count += 1 }
        }
    }

    func gate() throws -> (EmbeddedChannel, Quiesces) {
        let quiesces = Quiesces()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([QuiesceGate(grace: .seconds(2), firstRequestGrace: .seconds(10)), quiesces])
        return (channel, quiesces)
    }

    static let request = HTTPRequestPart.head(HTTPRequest(method: .get, scheme: nil, authority: "x", path: "/"))

    @Test func anIdleConnectionWaitsForItsNextRequestWhichIsAnsweredWithClose() throws {
        let (channel, quiesces) = try gate()
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(quiesces.count == 0, "held while no request is in progress")
        try channel.writeInbound(Self.request)
        #expect(quiesces.count == 1, "passed on once the next request's head is in")
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
        guard case .head(let head) = try channel.readOutbound(as: HTTPResponsePart.self) else {
            Issue.record("no response head")
            return
        }
        #expect(head.headerFields[.connection] == "close")
        channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        #expect(quiesces.count == 1, "the grace's timer was cancelled")
    }

    @Test func aQuietKeepAliveConnectionIsLetGoAfterTheGrace() throws {
        let (channel, quiesces) = try gate()
        try channel.writeInbound(Self.request)
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1900))
        #expect(quiesces.count == 0)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(200))
        #expect(quiesces.count == 1)
    }

    /// Accepted just before the listener stopped: its first request may take longer to be read than a
    /// keep-alive connection's grace on a loaded machine (a reset seen in UpgradeTests under load).
    @Test func aConnectionYetToSendItsFirstRequestGetsTheLongerGrace() throws {
        let (channel, quiesces) = try gate()
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(9900))
        #expect(quiesces.count == 0)
        try channel.writeInbound(Self.request)
        #expect(quiesces.count == 1, "passed on with its first request, answered with close")
        channel.embeddedEventLoop.advanceTime(by: .seconds(20))
        #expect(quiesces.count == 1)
    }

    @Test func aConnectionThatNeverSendsIsLetGoAfterTheLongerGrace() throws {
        let (channel, quiesces) = try gate()
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(10_100))
        #expect(quiesces.count == 1)
    }

    @Test func aRequestInProgressIsToldAtOnceAndOnlyOnce() throws {
        let (channel, quiesces) = try gate()
        try channel.writeInbound(Self.request)
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(quiesces.count == 1)
    }

    @Test func withoutAQuiesceAnswersAreUntouched() throws {
        let (channel, _) = try gate()
        try channel.writeInbound(Self.request)
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
        guard case .head(let head) = try channel.readOutbound(as: HTTPResponsePart.self) else {
            Issue.record("no response head")
            return
        }
        #expect(head.headerFields[.connection] == nil)
    }
}
