@testable import GustDaemon
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// `ConnectionPersistence` on its own: which answers say what about their
/// connection, by the version and `Connection` of the request each answers.
@Suite struct ConnectionPersistenceTests {
    func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ConnectionPersistence())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()  // active, so that a close shows
        return channel
    }

    func request(_ version: HTTPVersion, connection: String? = nil) -> [HTTPServerRequestPart] {
        var head = HTTPRequestHead(version: version, method: .GET, uri: "/")
        if let connection { head.headers.add(name: "Connection", value: connection) }
        return [.head(head), .end(nil)]
    }

    /// Writes an answer (head and end) and gives back the head as written.
    func answer(_ status: HTTPResponseStatus = .ok, connection: String? = nil, on channel: EmbeddedChannel) throws -> HTTPResponseHead? {
        var head = HTTPResponseHead(version: .http1_1, status: status)
        if let connection { head.headers.add(name: "Connection", value: connection) }
        try channel.writeOutbound(HTTPServerResponsePart.head(head))
        if status.code >= 200 { try channel.writeOutbound(HTTPServerResponsePart.end(nil)) }
        guard case .head(let written) = try channel.readOutbound(as: HTTPServerResponsePart.self) else { return nil }
        while try channel.readOutbound(as: HTTPServerResponsePart.self) != nil {}
        return written
    }

    @Test func anHTTP10RequestIsAnsweredWithCloseAndTheConnectionClosesAfterTheEnd() throws {
        let channel = try channel()
        for part in request(.http1_0) { try channel.writeInbound(part) }
        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok)))
        #expect(channel.isActive, "not closed before the answer's end")
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        guard case .head(let head) = try channel.readOutbound(as: HTTPServerResponsePart.self) else {
            Issue.record("no head written")
            return
        }
        #expect(head.headers["connection"] == ["close"])
        #expect(!channel.isActive)
    }

    @Test func anHTTP10RequestAskingForKeepAliveIsKeptAndToldSo() throws {
        let channel = try channel()
        for version in 0..<2 {
            for part in request(.http1_0, connection: version == 0 ? "keep-alive" : "Keep-Alive") { try channel.writeInbound(part) }
            let head = try answer(on: channel)
            #expect(head?.headers["connection"] == ["keep-alive"])
            #expect(channel.isActive)
        }
        // An answer that says `close` itself keeps saying it (the lane, a drain).
        for part in request(.http1_0, connection: "keep-alive") { try channel.writeInbound(part) }
        #expect(try answer(connection: "close", on: channel)?.headers["connection"] == ["close"])
    }

    @Test func aConnectionThatStartsWithHTTP11KeepsItsRulesAndLosesTheHandler() throws {
        let channel = try channel()
        for part in request(.http1_1) + request(.http1_1, connection: "close") + request(.http1_0) { try channel.writeInbound(part) }
        #expect(throws: ChannelPipelineError.notFound) { try channel.pipeline.syncOperations.handler(type: ConnectionPersistence.self) }
        for _ in 0..<3 { #expect(try answer(on: channel)?.headers["connection"] == [], "closing after `close` is Hummingbird's and the lane's") }
        #expect(channel.isActive)
    }

    @Test func eachAnswerGoesByItsOwnRequestWhenRequestsArePipelined() throws {
        let channel = try channel()
        for part in request(.http1_0, connection: "keep-alive") + request(.http1_1) + request(.http1_0) { try channel.writeInbound(part) }
        #expect(try answer(on: channel)?.headers["connection"] == ["keep-alive"])
        #expect(try answer(on: channel)?.headers["connection"] == [])
        #expect(channel.isActive, "the HTTP/1.1 request's answer leaves the connection open")
        // A 100 Continue is not the answer.
        #expect(try answer(.continue, on: channel)?.headers["connection"] == [])
        #expect(try answer(on: channel)?.headers["connection"] == ["close"])
        #expect(!channel.isActive, "the HTTP/1.0 request's answer closes it")
    }

    @Test func anAnswerWithNoRequestBeforeItIsAsItIs() throws {
        let channel = try channel()
        #expect(try answer(.badRequest, on: channel)?.headers["connection"] == [])
        #expect(channel.isActive)
    }
}
