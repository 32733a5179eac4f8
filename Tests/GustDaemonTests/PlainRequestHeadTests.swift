import GustTesting
@testable import GustDaemon
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// `PlainRequestHead` reads only heads that NIO's decoder reads the same way,
/// ending where the decoder ends them: checked against the decoder itself on
/// plain heads, on the shapes a smuggler tries, and on thousands of mutations.
@Suite struct PlainRequestHeadTests {
    static let plain = "GET /_/health HTTP/1.1\r\nHost: cats.localhost\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n"

    func read(_ text: String) -> PlainRequestHead? {
        Array(text.utf8).withUnsafeBytes(PlainRequestHead.read)
    }

    @Test func readsAPlainHeadAndWhereItEnds() {
        let head = read(Self.plain + "GET /next HTTP/1.1\r\n")
        var withoutOthers = head
        withoutOthers?.others = []
        #expect(withoutOthers == PlainRequestHead(target: "/_/health", host: "cats.localhost", requestID: nil, closes: false, length: Self.plain.utf8.count))
        // The fields a call forwards, as sent, read from where the head starts.
        var bytes = ByteBuffer(string: "xx" + Self.plain)
        bytes.moveReaderIndex(forwardBy: 2)
        #expect(head?.fields(in: bytes).map { "\($0.name): \($0.value)" } == ["User-Agent: curl/8", "Accept: */*"])
        let more = read("GET /a?b=c HTTP/1.1\r\nhOsT:  x.test\r\nX-Request-ID: abc\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n")
        #expect(more?.target == "/a?b=c")
        #expect(more?.host == "x.test")
        #expect(more?.requestID == "abc")
        #expect(more?.closes == true)
        #expect(read("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")?.closes == false)
    }

    /// A private app's token, as the lane reads it: by name in any case, several joined with ", "
    /// as `HTTPFields` joins them (so two tokens are no token), from where the head starts.
    @Test func readsAFieldsValuesByNameInAnyCase() {
        let text = "GET /x HTTP/1.1\r\nHost: x\r\nx-auth-token: one\r\nAccept: */*\r\nX-AUTH-TOKEN: two\r\nX-Auth-Tokens: no\r\n\r\n"
        let head = read(text)
        var bytes = ByteBuffer(string: "xyz" + text)
        bytes.moveReaderIndex(forwardBy: 3)
        #expect(head?.value(of: "X-Auth-Token", in: bytes) == "one, two")
        #expect(head?.value(of: "Accept", in: bytes) == "*/*")
        #expect(head?.value(of: "Authorization", in: bytes) == nil)
        let single = "GET /x HTTP/1.1\r\nHost: x\r\nX-Auth-Token: gust_abc\r\n\r\n"
        #expect(read(single)?.value(of: "X-Auth-Token", in: ByteBuffer(string: single)) == "gust_abc")
    }

    /// A `POST` (or a `GET`) with a small body of a `Content-Length`: the head ends before the body.
    @Test func readsASmallBodysLengthAndLeavesTheBodyAfterTheHead() {
        let head = "POST /call HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n"
        let read = read(head + "{\"n\":1}")
        #expect(read?.method == .post)
        #expect(read?.length == head.utf8.count)
        #expect(read?.bodyLength == 7)
        #expect(self.read("GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")?.bodyLength == 5)
        #expect(self.read("POST /a HTTP/1.1\r\nHost: x\r\n\r\n")?.bodyLength == 0)
        #expect(self.read("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 00016384\r\n\r\n") == nil, "eight digits")
        #expect(self.read("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 16384\r\n\r\n")?.bodyLength == PlainRequestHead.maxBodyLength)
    }

    @Test func leavesEveryOtherFormToTheDecoder() {
        let refused = [
            "GET /_/health HTTP/1.1\r\nHost: x\r\n",  // not whole
            "GET /_/health HTTP/1.1\nHost: x\n\n",  // bare LF
            "GET /_/health HTTP/1.1\r\nHost: x\r\n \tfolded\r\n\r\n",  // obsolete line fold
            "GET /_/health HTTP/1.0\r\nHost: x\r\n\r\n",
            "HEAD /_/health HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET http://x/_/health HTTP/1.1\r\nHost: x\r\n\r\n",  // absolute form
            "GET /_/health HTTP/1.1\r\n\r\n",  // no Host
            "GET /_/health HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
            "PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na",
            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 16385\r\n\r\n",  // over maxBodyLength
            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 123456\r\n\r\n",
            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5,5\r\n\r\nhello",
            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5 5\r\n\r\nhello",
            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello",
            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
            "GET /_/health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
            "GET /_/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "GET /_/health HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            "GET /_/health HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
            "GET /_/health HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, x-secret\r\n\r\n",
            "GET /_/health HTTP/1.1\r\nHost: x\r\nName : value\r\n\r\n",  // space before the colon
            "GET /_/health HTTP/1.1\r\nHost: x\r\nA: caf\u{e9}\r\n\r\n",  // outside ASCII
            "GET /_/health HTTP/1.1\r\nHost: x\r\nA: \u{0}\r\n\r\n",
            "GET /_/health HTTP/1.1\r\nHost: x\r\nConnection: close\t\r\n\r\n",  // a tab NIO keeps in the value
            "GET /_/health HTTP/1.1\r\nHost: x \r\n\r\n",  // and a space
            "GET /_/health HTTP/1.1\r\nHost:\r\n\r\n",
            "GET /_/health HTTP/1.1\r\nHost: x\r\nA: b\rc\r\n\r\n",  // bare CR
            "GET  /_/health HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /_/health HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\r\nX-Request-Id: b\r\n\r\n",
            "GET /_/health HTTP/1.1\r\nHost: x\r\nA: " + String(repeating: "a", count: PlainRequestHead.maxLength) + "\r\n\r\n",
        ]
        for text in refused { #expect(read(text) == nil, "\(text.debugDescription)") }
    }

    /// Every head read here is read by NIO's decoder as the same request, and ends where the
    /// decoder ends it: the request after it is the decoder's next.
    @Test func everyHeadReadHereIsTheDecodersToo() throws {
        var random = SplitMix(seed: 11)
        let seeds = [
            Self.plain,
            "GET /_/health?x=1 HTTP/1.1\r\nHost: a.localhost:8080\r\nX-Request-Id: r-1\r\nConnection: keep-alive\r\n\r\n",
            "GET /_/health HTTP/1.1\r\nhost:b\r\ncontent-length:0\r\nconnection:close\r\n\r\n",
            "POST /call/x HTTP/1.1\r\nHost: c.test\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"n\": 12}GET / HTTP/1.1\r\n",
            "POST /call HTTP/1.1\r\nContent-Length: 12\r\nHost: c.test\r\n\r\nPOST /x HTTP/1.1\r\nHost: y\r\n\r\n",
        ]
        let pieces: [[UInt8]] = [
            [13], [10], [13, 10], [32], [9], [0], [0x7F], [0x80], [0xFF], Array(":".utf8), Array("a".utf8), Array("/".utf8),
            Array("\r\n ".utf8), Array("\r\nHost: z\r\n".utf8), Array("\r\nContent-Length: 1\r\n".utf8),
            Array("\r\nTransfer-Encoding: chunked\r\n".utf8), Array(" HTTP/1.1".utf8), Array("\r\n\r\n".utf8), Array("%00".utf8),
            Array("0".utf8), Array("9".utf8), Array(",".utf8), Array("+".utf8), Array("POST".utf8), Array("\r\nContent-Length: 3\r\n".utf8),
        ]
        var accepted = 0
        var withBodies = 0
        for round in 0..<10_000 {
            let bytes = random.mutated(Array(seeds[round % seeds.count].utf8), with: pieces, times: 1...3)
            // As the lane takes them: a head with its body whole in the bytes.
            guard let head = bytes.withUnsafeBytes(PlainRequestHead.read), head.length + head.bodyLength <= bytes.count else { continue }
            accepted += 1
            if head.bodyLength > 0 { withBodies += 1 }
            try expectTheDecoderReads(head, from: bytes)
        }
        for seed in seeds { try expectTheDecoderReads(#require(read(seed)), from: Array(seed.utf8)) }
        #expect(accepted > 100)  // the mutations left enough plain heads to compare
        #expect(withBodies > 50)  // and enough of them with bodies
    }

    private func expectTheDecoderReads(_ head: PlainRequestHead, from bytes: [UInt8]) throws {
        let next = "GET /after HTTP/1.1\r\nHost: after\r\n\r\n"
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder()))
        defer { _ = try? channel.finish() }
        let end = head.length + head.bodyLength
        var input = channel.allocator.buffer(capacity: end + next.utf8.count)
        input.writeBytes(bytes[..<end])
        // After `Connection: close` nothing more is read, by either.
        if !head.closes { input.writeString(next) }
        let text = String(decoding: bytes[..<end], as: UTF8.self).debugDescription
        do {
            try channel.writeInbound(input)
        } catch {
            Issue.record("read here, refused by the decoder (\(error)): \(text)")
            return
        }
        var heads: [HTTPRequestHead] = []
        var bodyBytes = 0
        while let part = try channel.readInbound(as: HTTPServerRequestPart.self) {
            switch part {
            case .head(let decoded): heads.append(decoded)
            case .body(let body): bodyBytes += body.readableBytes
            case .end: break
            }
        }
        // The body the decoder reads is the one the lane takes, and the request after it is the decoder's next.
        #expect(heads.count == (head.closes ? 1 : 2) && bodyBytes == head.bodyLength, "\(text)")
        guard let decoded = heads.first else { return }
        #expect(decoded.method == (head.method == .post ? .POST : .GET) && decoded.version == .http1_1, "\(text)")
        #expect(decoded.uri == head.target, "\(text)")
        #expect(decoded.headers["host"] == [head.host], "\(text)")
        #expect(decoded.headers["x-request-id"].first == head.requestID, "\(text)")
        #expect(decoded.isKeepAlive == !head.closes, "\(text)")
        #expect(head.closes || heads.last?.uri == "/after", "\(text)")
        // The fields a call forwards are the decoder's, in order, but for the four read apart.
        let apart: Set<String> = ["host", "x-request-id", "connection", "content-length"]
        let decodedOthers = decoded.headers.filter { !apart.contains($0.name.lowercased()) }.map { "\($0.name): \($0.value)" }
        let others = head.fields(in: ByteBuffer(bytes: bytes)).map { "\($0.name): \($0.value)" }
        #expect(others == decodedOthers, "\(text)")
    }
}
