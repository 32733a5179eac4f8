import GustTesting
@testable import GustDaemon
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// gustd's own framing on an instance's connection, held to NIO's HTTP client codec, which it
/// replaced: every answer read here is read by NIO's decoder (llhttp) as the same status, fields
/// and body, however its bytes come; what a runtime never sends and could be read two ways is
/// refused; and a request is written byte for byte as NIO's encoder wrote it.
@Suite struct InstanceAnswerDecoderTests {
    static let seeds = [
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\nok",
        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nX-Empty:\r\nX-Spaced:   a  b   \r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\na;name=value\r\n0123456789\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
        "HTTP/1.1 500 \r\nContent-Length: 5\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nerror",
        "HTTP/1.1 204 No Content\r\n\r\n",
        "HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-Until: close\r\n\r\nthe rest of the connection",
        "HTTP/1.1 201 Created\r\nContent-Length: 3\r\nX-Latin: caf\u{E9}\r\n\r\nabc",
    ]

    // MARK: - Read as NIO reads it

    /// Every answer read here, mutated seed after mutated seed and cut into random pieces, is the
    /// answer NIO's decoder reads from the same bytes.
    @Test func everyAnswerReadHereIsNIOsToo() throws {
        var random = SplitMix(seed: 7)
        let pieces: [[UInt8]] = [
            [13], [10], [13, 10], [32], [9], [0], [0x7F], [0x80], [0xE9], Array(":".utf8), Array(";".utf8), Array("a".utf8),
            Array("0".utf8), Array("7".utf8), Array("f".utf8), Array("\r\n ".utf8), Array("\r\nContent-Length: 1\r\n".utf8),
            Array("\r\nTransfer-Encoding: chunked\r\n".utf8), Array("\r\n\r\n".utf8), Array("HTTP/1.1 100 Continue\r\n\r\n".utf8),
        ]
        var accepted = 0
        for round in 0..<8_000 {
            let bytes = random.mutated(Array(Self.seeds[round % Self.seeds.count].utf8), with: pieces, times: 0...2)
            let method: HTTPMethod = round % 7 == 3 ? .HEAD : .GET
            guard let ours = Self.readHere(bytes, method: method, cuts: Self.cuts(bytes.count, using: &random)) else { continue }
            accepted += 1
            let text = String(decoding: bytes, as: UTF8.self).debugDescription
            guard let nio = try? Self.readByNIO(bytes, method: method) else {
                Issue.record("read here as \(ours), refused by NIO: \(text)")
                continue
            }
            #expect(ours == nio, "\(text)")
        }
        #expect(accepted > 1_000)  // the mutations left enough answers whole to compare
    }

    /// Each seed is read whole, in one piece and a byte at a time, and as NIO reads it.
    @Test func theSeedsAreReadWholeHowEverTheyCome() throws {
        for seed in Self.seeds {
            let bytes = Array(seed.utf8)
            let whole = try #require(Self.readHere(bytes, method: .GET, cuts: []), "\(seed.debugDescription)")
            #expect(Self.readHere(bytes, method: .GET, cuts: Array(1..<bytes.count)) == whole)
            #expect(try Self.readByNIO(bytes, method: .GET) == whole)
            #expect(whole.last == "end")
        }
    }

    // MARK: - Refused

    @Test func whatCouldBeReadTwoWaysIsRefused() {
        let refused = [
            "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\nContent-Length: 0\n\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
            "HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nx",
            "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX-Nul: a\0b\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX-CR: a\rb\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 099 OK\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 600 OK\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 abc\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n 1\r\nx\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nnot a field\r\n\r\n",
            "\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX-Long: " + String(repeating: "a", count: InstanceAnswerDecoder.maxHeadLength) + "\r\n\r\n",
        ]
        for text in refused {
            var decoder = InstanceAnswerDecoder()
            decoder.expectAnswer(to: .GET)
            decoder.add(ByteBuffer(string: text))
            #expect(throws: InstanceAnswerDecoder.Malformed.self, "\(text.prefix(120).debugDescription)") {
                while try decoder.next() != nil {}
                _ = try decoder.inputEnded()
            }
        }
    }

    @Test func aHeadThatNeverEndsIsRefusedAtItsLimit() throws {
        var decoder = InstanceAnswerDecoder()
        decoder.add(ByteBuffer(string: "HTTP/1.1 200 OK\r\n"))
        #expect(try decoder.next() == nil)
        let field = ByteBuffer(string: "X-A: " + String(repeating: "a", count: 1000) + "\r\n")
        #expect(throws: InstanceAnswerDecoder.Malformed.self) {
            for _ in 0..<100 {
                decoder.add(field)
                _ = try decoder.next()
            }
        }
    }

    @Test func anAnswerCutShortIsRefusedAtTheEndOfInput() throws {
        var decoder = InstanceAnswerDecoder()
        decoder.add(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc"))
        while try decoder.next() != nil {}
        #expect(throws: InstanceAnswerDecoder.Malformed.self) { try decoder.inputEnded() }
    }

    // MARK: - What a runtime may send besides its answer

    /// An interim answer (a client's `Expect: 100-continue` is forwarded, and Node's server answers it)
    /// is read past, as NIO's decoder read past it.
    @Test func anInterimAnswerIsReadPast() throws {
        let bytes = Array("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8)
        #expect(Self.readHere(bytes, method: .GET, cuts: []) == ["head 200 Content-Length=2", "body ok", "end"])
        #expect(try Self.readByNIO(bytes, method: .GET) == ["head 200 Content-Length=2", "body ok", "end"])
    }

    @Test func anAnswerToHEADHasNoBodyWhateverItsLength() throws {
        var decoder = InstanceAnswerDecoder()
        decoder.expectAnswer(to: .HEAD)
        decoder.add(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"))
        #expect(try decoder.next() == .head(status: 200, headers: ["Content-Length": "5"], framing: .none))
        #expect(try decoder.next() == .end)
        decoder.expectAnswer(to: .GET)
        decoder.add(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"))
        #expect(try decoder.next() == .head(status: 200, headers: ["Content-Length": "1"], framing: .length(1)))
        #expect(try decoder.next() == .body(ByteBuffer(string: "x")))
        #expect(try decoder.next() == .end)
        #expect(!decoder.hasUnread)
    }

    // MARK: - Requests

    /// Requests are the bytes NIO's encoder wrote for them, with the changes the handler made first.
    @Test func aRequestIsWrittenAsNIOsEncoderWroteIt() throws {
        let requests = [
            InstanceRequest(method: .GET, target: "/hello"),
            InstanceRequest(method: .POST, target: "/_gust/ops/add", headers: ["Content-Type": "application/json", "X-Gust-Call": "7"],
                            body: ByteBuffer(string: "{\"a\":1}")),
            InstanceRequest(method: .GET, target: "/_gust/health", headers: ["X-Gust-Internal": "forged", "content-length": "99"]),
            InstanceRequest(method: .HEAD, target: "/a?b=c", headers: ["Host": "cats.test", "X-Forwarded-For": "127.0.0.1", "X-Multi": "1",
                                                                         "x-multi": "2"]),
            InstanceRequest(method: .DELETE, target: "/items/1", headers: ["Accept": "*/*", "X-Unicode": "café"]),
        ]
        for request in requests {
            var ours = ByteBuffer()
            request.write(into: &ours, internalToken: "secret")
            #expect(String(buffer: ours) == (try Self.writtenByNIO(request, internalToken: "secret")), "\(request.target)")
        }
    }

    /// Whatever a caller hands over, a request is never split: a field that cannot be sent is left
    /// out, and a target's bytes that cannot stand in a request line are escaped.
    @Test func aRequestIsNeverSplit() {
        let request = InstanceRequest(
            method: .GET, target: "/a b\r\nX-Injected: 1",
            headers: ["X-Good": "1", "X-Bad": "a\r\nX-Injected: 2", "Bad Name": "x", "X-Nul": "a\0b"])
        var bytes = ByteBuffer()
        request.write(into: &bytes, internalToken: "secret")
        #expect(String(buffer: bytes) == "GET /a%20b%0D%0AX-Injected:%201 HTTP/1.1\r\nX-Good: 1\r\nContent-Length: 0\r\nHost: instance\r\n\r\n")
    }

    /// A call's tag is written as the one `X-Gust-Call` field, whatever `X-Gust-Call` the headers
    /// carry (none should: the gateway drops every `X-Gust-*` a client sends), and a tag that could
    /// split the request is not written.
    @Test func aCallTagIsTheOneCallFieldSent() {
        var request = InstanceRequest(method: .GET, target: "/hello", headers: ["x-gust-call": "forged", "X-Good": "1"])
        request.callTag = "42"
        var bytes = ByteBuffer()
        request.write(into: &bytes, internalToken: "secret")
        #expect(String(buffer: bytes) == "GET /hello HTTP/1.1\r\nX-Good: 1\r\nX-Gust-Call: 42\r\nContent-Length: 0\r\nHost: instance\r\n\r\n")
        request.callTag = "1\r\nX-Injected: 1"
        bytes.clear()
        request.write(into: &bytes, internalToken: "secret")
        #expect(String(buffer: bytes) == "GET /hello HTTP/1.1\r\nX-Good: 1\r\nContent-Length: 0\r\nHost: instance\r\n\r\n")
    }

    // MARK: - Helpers

    /// Up to three places to cut `count` bytes at.
    static func cuts(_ count: Int, using random: inout SplitMix) -> [Int] {
        guard count > 1 else { return [] }
        return (0..<Int.random(in: 0...3, using: &random)).map { _ in Int.random(in: 1..<count, using: &random) }.sorted()
    }

    /// The parts of the answer in `bytes` read here, given in pieces cut at `cuts`, then the end of
    /// input; nil if refused, not whole, or not all of the bytes.
    static func readHere(_ bytes: [UInt8], method: HTTPMethod, cuts: [Int]) -> [String]? {
        var decoder = InstanceAnswerDecoder()
        decoder.expectAnswer(to: method)
        var parts: [InstanceAnswerDecoder.Part] = []
        var from = 0
        do {
            for to in cuts + [bytes.count] where to > from {
                guard parts.last != .end else { return nil }
                decoder.add(ByteBuffer(bytes: bytes[from..<to]))
                from = to
                while parts.last != .end, let part = try decoder.next() { parts.append(part) }
            }
            if parts.last != .end, let end = try decoder.inputEnded() { parts.append(end) }
        } catch {
            return nil
        }
        guard parts.last == .end, !decoder.hasUnread else { return nil }
        return render(parts.map { part in
            switch part {
            case .head(let status, let headers, _): .head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: status), headers: headers))
            case .body(let body): .body(body)
            case .end: .end(nil)
            }
        })
    }

    /// The parts of the first answer in `bytes` as NIO's client codec reads them, after a request of
    /// `method`.
    static func readByNIO(_ bytes: [UInt8], method: HTTPMethod) throws -> [String] {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        try channel.pipeline.syncOperations.addHTTPClientHandlers()
        try channel.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: "/")))
        try channel.writeOutbound(HTTPClientRequestPart.end(nil))
        try channel.writeInbound(ByteBuffer(bytes: bytes))
        channel.pipeline.fireChannelInactive()
        var parts: [HTTPClientResponsePart] = []
        while let part = try channel.readInbound(as: HTTPClientResponsePart.self) {
            parts.append(part)
            if case .end = part { break }
        }
        return render(parts)
    }

    /// Parts as text to compare: a head's status and fields, the body's pieces as one.
    static func render(_ parts: [HTTPClientResponsePart]) -> [String] {
        var lines: [String] = []
        var body: [UInt8]?
        for part in parts {
            if case .body(let piece) = part {
                body = (body ?? []) + piece.readableBytesView
                continue
            }
            if let pending = body {
                lines.append("body " + String(decoding: pending, as: UTF8.self))
                body = nil
            }
            switch part {
            case .head(let head):
                lines.append("head \(head.status.code) " + head.headers.map { "\($0.name)=\($0.value)" }.joined(separator: "|"))
            case .end: lines.append("end")
            case .body: break
            }
        }
        if let pending = body { lines.append("body " + String(decoding: pending, as: UTF8.self)) }
        return lines
    }

    /// What NIO's encoder wrote for `request`, after the changes the handler made to its fields then.
    static func writtenByNIO(_ request: InstanceRequest, internalToken: String) throws -> String {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        try channel.pipeline.syncOperations.addHTTPClientHandlers()
        var headers = request.headers
        headers.remove(name: InternalSecret.header)
        if request.isInternal { headers.add(name: InternalSecret.header, value: internalToken) }
        headers.replaceOrAdd(name: "Content-Length", value: String(request.body.readableBytes))
        if !headers.contains(name: "Host") { headers.add(name: "Host", value: "instance") }
        try channel.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: request.method, uri: request.target, headers: headers)))
        if request.body.readableBytes > 0 { try channel.writeOutbound(HTTPClientRequestPart.body(.byteBuffer(request.body))) }
        try channel.writeOutbound(HTTPClientRequestPart.end(nil))
        var text = ""
        while let bytes = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: bytes) }
        return text
    }
}
