import Foundation
import GustCore
import GustTesting
import Testing

/// Issue 11, items 5 and 6: what a call carries to its function and back
/// (X-Forwarded-For, X-Forwarded-Proto, X-Request-Id), gustd's access log, a
/// body over the limit (413 JSON), and runtime protocol 2's call ids crediting
/// each line to its own call while Node calls overlap. Real gustd, real pushes,
/// real Python and Node instances.
@Suite(.timeLimit(.minutes(20)))
struct GatewayCallTests {
    static let python = """
        import time

        import gust

        @gust.handler('headers', methods=['GET'])
        def headers(request):
            seen = {k.lower(): v for k, v in request.headers.items()}
            return {name: seen.get(name) for name in ('x-forwarded-for', 'x-forwarded-proto', 'x-request-id', 'x-gust-call')}

        @gust.op('size')
        def size(**arguments):
            return len(arguments.get('blob', ''))

        @gust.handler('tag', methods=['GET'])
        def tag(request):
            seen = {k.lower(): v for k, v in request.headers.items()}
            if seen.get('x-slow'):
                time.sleep(float(seen['x-slow']))
            return {'n': seen.get('x-n')}

        @gust.handler('echo', methods=['POST'])
        def echo(request):
            seen = {k.lower(): v for k, v in request.headers.items()}
            return {'got': request.json(), 'type': seen.get('content-type'), 'n': seen.get('x-n')}

        """

    func pushPython(_ fixture: PushFixture) throws {
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.python)
        try work.commit("Headers")
        let pushed = try work.push(to: fixture.remote)
        #expect(pushed.status == 0, "\(pushed.output)")
    }

    @Test(.scratchDirectory) func callsCarryForwardedHeadersAndARequestIDAndEachGetsAnAccessLogLine() throws {
        let accessLog = ScratchDirectory.current.appendingPathComponent("access.log")
        let fixture = try PushFixture(gustdArguments: ["--access-log", accessLog.path])
        try pushPython(fixture)

        // gustd is the edge: a client's X-Forwarded-For and X-Forwarded-Proto are not believed.
        let forged = try fixture.call("GET", "/headers?secret=s3cret", headers: [
            "X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https", "X-Request-Id": "client-id.42", "X-Gust-Call": "99",
        ])
        #expect(forged.status == 200, "\(forged.text)")
        #expect(forged.json?["x-forwarded-for"] as? String == "127.0.0.1", "\(forged.text)")
        #expect(forged.json?["x-forwarded-proto"] as? String == "http", "\(forged.text)")
        #expect(forged.json?["x-request-id"] as? String == "client-id.42", "a sane id is kept: \(forged.text)")
        #expect(forged.json?["x-gust-call"] is NSNull, "the call id is the runtime's, never a handler's: \(forged.text)")
        #expect(forged.headers["x-request-id"] == "client-id.42")

        // An id that is too long or holds odd characters is replaced, and the new one echoed.
        for bad in [String(repeating: "a", count: 200), "two words", "quote\"d"] {
            let call = try fixture.call("GET", "/headers", headers: ["X-Request-Id": bad])
            let made = call.headers["x-request-id"] ?? ""
            #expect(!made.isEmpty && made != bad, "\(bad): \(made)")
            #expect(call.json?["x-request-id"] as? String == made, "the function sees the id the client gets: \(call.text)")
        }
        // Errors carry one too.
        let missing = try fixture.call("GET", "/nowhere", headers: ["X-Request-Id": "lost-1"])
        #expect(missing.status == 404 && missing.headers["x-request-id"] == "lost-1")

        // One line per call, without the query string.
        var lines: [String] = []
        for _ in 0..<100 {  // the writer thread is asynchronous: at most 5 s
            lines = ((try? String(contentsOf: accessLog, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            if lines.contains(where: { $0.contains("id=lost-1") }) { break }
            usleep(50_000)
        }
        let line = try #require(lines.first { $0.hasSuffix("id=client-id.42") }, "\(lines)")
        #expect(line.contains(" app=cats release=v1 instance="), "\(line)")
        #expect(line.contains(" method=GET path=/apps/cats/headers status=200 bytes="), "\(line)")
        #expect(!line.contains("s3cret"), "the query string stays out of the log: \(line)")
        #expect(line.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "#, options: .regularExpression) != nil, "\(line)")
        #expect(line.range(of: #" ms=\d+\.\d{3} "#, options: .regularExpression) != nil, "\(line)")
        let lost = try #require(lines.first { $0.hasSuffix("id=lost-1") }, "\(lines)")
        #expect(lost.contains(" status=404 "), "\(lost)")
        #expect(lines.filter { $0.contains(" path=/apps/cats/headers ") }.count == 4, "one line per call: \(lines)")
        #expect(lines.filter { $0.contains(" path=/apps/cats/nowhere ") }.count == 1, "one line per call: \(lines)")
    }

    @Test(.scratchDirectory) func aBodyOverTheLimitIs413JSON() throws {
        let fixture = try PushFixture(gustdArguments: ["--max-body", "1m"])
        try pushPython(fixture)
        let small = try fixture.call("POST", "/_/functions/size", body: #"{"blob": "abc"}"#)
        #expect(small.text == "3", "\(small.text)")

        let blob = String(repeating: "x", count: 2 * 1024 * 1024)
        let big = try fixture.call("POST", "/_/functions/size", body: #"{"blob": "\#(blob)"}"#)
        #expect(big.status == 413, "\(big.status) \(big.text.prefix(200))")
        #expect(big.json?["code"] as? Int == 413, "\(big.text.prefix(200))")
        #expect(big.headers["content-type"] == "application/json")

        // Sent in chunks, without a length to refuse it by: the same 413 once the limit is passed.
        let raw = try RawConnection(port: fixture.port)
        var limit = timeval(tv_sec: 5, tv_usec: 0)  // gustd may stop reading once it has answered
        setsockopt(raw.fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        raw.send("POST /apps/cats/_/functions/size HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        let chunk = String(repeating: "y", count: 64 * 1024)
        for _ in 0..<32 { raw.send(String(64 * 1024, radix: 16) + "\r\n" + chunk + "\r\n") }
        raw.send("0\r\n\r\n")
        let answer = try HTTPClient.parse(Data(raw.readAll(seconds: 5).utf8))
        #expect(answer.status == 413, "\(answer.status) \(answer.text.prefix(200))")
        #expect(answer.json?["code"] as? Int == 413, "\(answer.text.prefix(200))")
        #expect(try fixture.call("POST", "/_/functions/size", body: "{}").text == "0", "the app still answers")
    }

    /// HTTP/1.0 keeps a connection only when the request asks for it (RFC 9112, 9.3): `ab` without
    /// `-k`, old proxies and health checkers send HTTP/1.0 and wait for the close to end the answer.
    /// Every way a request is answered closes after it: the lane's health answer and call, and
    /// Hummingbird's responder (a call with a body, an address with no app).
    @Test(.scratchDirectory) func anHTTP10RequestIsAnsweredAndClosedUnlessItAsksToBeKept() throws {
        let fixture = try PushFixture()
        try pushPython(fixture)
        let requests = [
            ("health, in the lane", "GET /apps/cats/_/health HTTP/1.0\r\nHost: x\r\n\r\n", 200),
            ("a call, in the lane", "GET /apps/cats/headers HTTP/1.0\r\n\r\n", 200),
            ("a call with a body", "POST /apps/cats/_/functions/size HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}", 200),
            ("no app there", "GET /apps/nobody/ HTTP/1.0\r\n\r\n", 404),
        ]
        for (what, request, status) in requests {
            let raw = try RawConnection(port: fixture.port)
            raw.send(request)
            let answer = try HTTPClient.parse(Data(raw.readAll(seconds: 5).utf8))
            #expect(answer.status == status, "\(what): \(answer.status) \(answer.text)")
            #expect(answer.headers["connection"] == "close", "\(what): \(answer.headers)")
            #expect(raw.isClosedByPeer, "\(what): the connection is closed after the answer")
        }
        // Asked to be kept, it is, and says so (an HTTP/1.0 client closes otherwise).
        let kept = try RawConnection(port: fixture.port)
        for round in 1...2 {
            kept.send("GET /apps/cats/headers HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            var text = ""
            for _ in 0..<100 where !text.contains("}") {  // the body is one JSON object: at most 5 s
                usleep(50_000)
                text += kept.drain()
            }
            let answer = try HTTPClient.parse(Data(text.utf8))
            #expect(answer.status == 200, "round \(round): \(text)")
            #expect(answer.headers["connection"]?.lowercased() == "keep-alive", "round \(round): \(answer.headers)")
            #expect(!kept.isClosedByPeer, "round \(round)")
        }
    }

    /// Answers pipelined on one connection come back in the order of their requests, whichever
    /// path each takes: the lane's calls and health answer, and Hummingbird's (a call with a
    /// body), with some sent while a call is in progress (which the lane holds until it is answered).
    @Test(.scratchDirectory) func pipelinedRequestsAreAnsweredInOrderAroundACallInProgress() throws {
        let fixture = try PushFixture()
        try pushPython(fixture)
        #expect(try fixture.call("GET", "/tag").status == 200, "the instance is up")
        let raw = try RawConnection(port: fixture.port)
        raw.send(Self.tag(1, slow: "0.4") + "GET /apps/cats/_/health HTTP/1.1\r\nHost: x\r\n\r\n")
        usleep(150_000)  // the first call is in progress
        raw.send(Self.tag(2) + "POST /apps/cats/_/functions/size HTTP/1.1\r\nHost: x\r\nContent-Length: 15\r\n\r\n{\"blob\": \"abc\"}"
            + Self.tag(3, slow: "0.1") + Self.tag(4))
        let (text, answers) = Self.awaitAnswers(6, on: raw)
        #expect(answers.map(\.status) == [200, 200, 200, 200, 200, 200], "\(text)")
        guard answers.count == 6 else { return }
        #expect(answers[0].body == #"{"n": "1"}"#, "\(answers[0].body)")
        #expect(answers[1].body.contains(#""app":"cats""#), "the health answer: \(answers[1].body)")
        #expect(answers[2].body == #"{"n": "2"}"#, "\(answers[2].body)")
        #expect(answers[3].body == "3", "the call with a body: \(answers[3].body)")
        #expect(answers[4].body == #"{"n": "3"}"#, "\(answers[4].body)")
        #expect(answers[5].body == #"{"n": "4"}"#, "\(answers[5].body)")
        #expect(!raw.isClosedByPeer, "the connection stays open")
    }

    /// Small bodies of a `Content-Length`, which gustd takes with their heads before the HTTP
    /// codec (`PlainLane`): pipelined in one write with calls without one, each call gets its own
    /// body and the answers keep their order; a body over `--max-body` is still 413 JSON and the
    /// connection goes on; a body still arriving (sent in two writes) gets to the function whole.
    @Test(.scratchDirectory) func smallBodiesPipelinedWithOtherCallsReachTheirOwnCallsInOrder() throws {
        let fixture = try PushFixture(gustdArguments: ["--max-body", "64"])
        try pushPython(fixture)
        #expect(try fixture.call("GET", "/tag").status == 200, "the instance is up")
        func echo(_ n: Int, _ body: String) -> String {
            "POST /apps/cats/echo HTTP/1.1\r\nHost: x\r\nX-N: \(n)\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(body.utf8.count)\r\n\r\n" + body
        }
        let raw = try RawConnection(port: fixture.port)
        let over = "[" + String(repeating: "1,", count: 40) + "1]"  // 83 bytes, over --max-body 64
        raw.send(echo(1, #"{"a": 1}"#) + Self.tag(2) + echo(3, #"[3, "GET / HTTP/1.1"]"#) + echo(4, over) + echo(5, "5"))
        let (text, answers) = Self.awaitAnswers(5, on: raw)
        #expect(answers.map(\.status) == [200, 200, 200, 413, 200], "\(text)")
        guard answers.count == 5 else { return }
        #expect(answers[0].body == #"{"got": {"a": 1}, "type": "application/json", "n": "1"}"#, "\(answers[0].body)")
        #expect(answers[1].body == #"{"n": "2"}"#, "\(answers[1].body)")
        #expect(answers[2].body == #"{"got": [3, "GET / HTTP/1.1"], "type": "application/json", "n": "3"}"#, "\(answers[2].body)")
        #expect(answers[3].body.contains(#""code":413"#), "\(answers[3].body)")
        #expect(answers[4].body == #"{"got": 5, "type": "application/json", "n": "5"}"#, "\(answers[4].body)")
        #expect(!raw.isClosedByPeer, "the connection stays open")

        // Ops take the lane too, as `respond` sends them: the body is the arguments and the query is
        // not sent; a GET is 405 with `Allow`, and the rest of `/_/` is not a call.
        func op(_ target: String, _ body: String) -> String {
            "POST /apps/cats/_/functions/\(target) HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
        }
        raw.send(
            op("size?blob=zzzzzzzz", #"{"blob": "abcd"}"#) + "GET /apps/cats/_/functions/size HTTP/1.1\r\nHost: x\r\n\r\n"
                + op("nope", "{}") + "POST /apps/cats/_/records/cat HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}" + Self.tag(9))
        let (opText, ops) = Self.awaitAnswers(5, on: raw)
        #expect(ops.map(\.status) == [200, 405, 404, 401, 200], "\(opText)")
        guard ops.count == 5 else { return }
        #expect(ops[0].body == "4", "\(ops[0].body)")
        #expect(opText.contains("Allow: POST") || opText.contains("allow: POST"), "\(opText)")
        #expect(ops[4].body == #"{"n": "9"}"#, "\(ops[4].body)")

        let split = try RawConnection(port: fixture.port)
        let whole = echo(6, #"{"split": true}"#)
        split.send(String(whole.dropLast(5)))
        usleep(100_000)
        split.send(String(whole.suffix(5)))
        let second = Self.awaitAnswers(1, on: split).text
        #expect(Self.answers(in: second).first?.body == #"{"got": {"split": true}, "type": "application/json", "n": "6"}"#, "\(second)")
    }

    /// A private app's calls, pipelined in one write as `PlainLane` reads them: each is answered in
    /// order, its token checked off the loop. Without a token, with a forged one or with two
    /// (`HTTPFields` joins them, which is no token) it is `respond`'s 403 JSON and no instance runs
    /// it (its access-log line names none); the header's name may come in any case; a revoked token
    /// is refused from the next call on.
    @Test(.scratchDirectory) func aPrivateAppsPipelinedCallsAreAnsweredInOrderEachAfterItsTokenCheck() throws {
        let accessLog = ScratchDirectory.current.appendingPathComponent("access.log")
        let fixture = try PushFixture(gustdArguments: ["--access-log", accessLog.path])
        try pushPython(fixture)
        #expect(try fixture.call("GET", "/tag").status == 200, "the instance is up")
        #expect(try GustBinaries.gust(fixture.home, ["apps", "set", "cats", "--private"]).status == 0)
        let created = try GustBinaries.gust(fixture.home, ["tokens", "create", "cats"])
        let token = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(created.status == 0 && token.hasPrefix("gust_"), "\(created.output)")
        func tag(_ n: Int, _ auth: String) -> String {
            "GET /apps/cats/tag HTTP/1.1\r\nHost: x\r\nX-N: \(n)\r\nX-Request-Id: private-\(n)\r\n\(auth)\r\n"
        }
        let op = "POST /apps/cats/_/functions/size HTTP/1.1\r\nHost: x\r\nX-Request-Id: private-6\r\nX-Auth-Token: \(token)\r\n"
            + "Content-Length: 16\r\n\r\n" + #"{"blob": "abcd"}"#
        let raw = try RawConnection(port: fixture.port)
        raw.send(
            tag(1, "X-Auth-Token: \(token)\r\n") + tag(2, "") + tag(3, "x-auth-token: \(token)\r\n") + tag(4, "X-Auth-Token: gust_forged\r\n")
                + tag(5, "X-Auth-Token: \(token)\r\nX-Auth-Token: \(token)\r\n") + op)
        let (text, answers) = Self.awaitAnswers(6, on: raw)
        #expect(answers.map(\.status) == [200, 403, 200, 403, 403, 200], "\(text)")
        guard answers.count == 6 else { return }
        #expect(answers[0].body == #"{"n": "1"}"# && answers[2].body == #"{"n": "3"}"# && answers[5].body == "4", "\(text)")
        for refused in [answers[1], answers[3], answers[4]] {
            #expect(refused.body == #"{"code":403,"error":"cats is private: send a valid token in X-Auth-Token (`gust tokens create cats`)."}"#, "\(refused.body)")
        }
        #expect(!raw.isClosedByPeer, "the connection stays open")

        #expect(try GustBinaries.gust(fixture.home, ["tokens", "revoke", "cats", "1"]).status == 0)
        raw.send(tag(7, "X-Auth-Token: \(token)\r\n"))
        let (revokedText, revoked) = Self.awaitAnswers(1, on: raw)
        #expect(revoked.map(\.status) == [403], "\(revokedText)")

        var lines: [String] = []
        for _ in 0..<100 {  // the writer thread is asynchronous: at most 5 s
            lines = ((try? String(contentsOf: accessLog, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            if lines.contains(where: { $0.contains("id=private-7") }) { break }
            usleep(50_000)
        }
        for n in 1...7 {
            let line = lines.first { $0.hasSuffix("id=private-\(n)") } ?? ""
            let ran = [1, 3, 6].contains(n)
            #expect(line.contains(ran ? "status=200" : "status=403") && line.contains("instance=-") != ran, "\(n): \(line)")
        }
    }

    /// A client may close its sending side once its requests are sent (`nc -N`, `shutdown(SHUT_WR)`):
    /// the calls it sent are still answered, in order, before the connection closes, as
    /// Hummingbird's path answers them. (The lane once let that end of input reach Hummingbird
    /// while its call ran, and Hummingbird, owing nothing, closed the connection unanswered.)
    @Test(.scratchDirectory) func aClientThatHalfClosesAfterItsRequestsStillGetsTheirAnswers() throws {
        let fixture = try PushFixture()
        try pushPython(fixture)
        #expect(try fixture.call("GET", "/tag").status == 200, "the instance is up")
        // One call, in progress when the end of input arrives.
        let one = try RawConnection(port: fixture.port)
        one.send(Self.tag(1, slow: "0.2"))
        one.finishSending()
        let first = Self.answers(in: one.readAll(seconds: 10))
        #expect(first.map(\.status) == [200] && first.first?.body == #"{"n": "1"}"#, "\(first)")
        // Several, pipelined: a slow call, a health check, then two more calls.
        let several = try RawConnection(port: fixture.port)
        several.send(Self.tag(2, slow: "0.2") + "GET /apps/cats/_/health HTTP/1.1\r\nHost: x\r\n\r\n" + Self.tag(3) + Self.tag(4))
        several.finishSending()
        let text = several.readAll(seconds: 10)
        let answers = Self.answers(in: text)
        #expect(answers.map(\.status) == [200, 200, 200, 200], "\(text)")
        #expect(answers.map(\.body).filter { $0.hasPrefix(#"{"n""#) } == [#"{"n": "2"}"#, #"{"n": "3"}"#, #"{"n": "4"}"#], "\(text)")
        #expect(several.isClosedByPeer, "then the connection closes")
    }

    /// A client that keeps its connection open after plain calls (as browsers and load balancers
    /// do) holds gustd's SIGTERM only for the short grace of a connection between requests (2 s):
    /// such calls are taken before the HTTP codec, and the gate that drains a connection, seeing
    /// none, once gave it the 10 s grace of a connection that has sent nothing yet.
    @Test(.scratchDirectory) func aKeptAliveConnectionOfPlainCallsDoesNotHoldShutdown() throws {
        let fixture = try PushFixture()
        try pushPython(fixture)
        #expect(try fixture.call("GET", "/tag").status == 200, "the instance is up")
        let kept = try RawConnection(port: fixture.port)
        kept.send(Self.tag(1) + "GET /apps/cats/_/health HTTP/1.1\r\nHost: x\r\n\r\n")
        usleep(500_000)
        #expect(Self.answers(in: kept.drain()).map(\.status) == [200, 200], "answered, and the connection kept")
        let gustd = try #require(fixture.gustd)
        let signalled = ContinuousClock.now
        let status = gustd.terminate(within: 20)
        let took = ContinuousClock.now - signalled
        #expect(status == 0, "gustd did not exit 0 within 20 s: \(status.map(String.init) ?? "still running")")
        #expect(took < .seconds(6), "gustd took \(took) to stop beside one idle kept-alive connection")
        #expect(kept.isClosedByPeer)
    }

    /// A client that pipelines requests and reads none of the answers makes gustd stop reading its
    /// requests once the answers it owes fill the connection's buffer, as Hummingbird's path does:
    /// the answers the lane writes itself (health checks, as many as the client can send in 5 s)
    /// are not piled up in gustd's memory. (Before: 18 MB grown for 96,000 checks of a debug
    /// build, 2 MB since.)
    @Test(.scratchDirectory) func aClientThatReadsNoAnswersCannotPileThemUpInGustd() throws {
        let fixture = try PushFixture()
        try pushPython(fixture)
        #expect(try fixture.call("GET", "/_/health").status == 200, "the app is live")
        let gustd = try #require(fixture.gustd)
        let before = RawConnection.residentBytes(gustd.pid)
        let client = try RawConnection(port: fixture.port)
        let sent = client.sendRepeated("GET /apps/cats/_/health HTTP/1.1\r\nHost: x\r\n\r\n", count: 400_000, within: 5)
        usleep(3_000_000)  // gustd answers what it has read
        let grown = RawConnection.residentBytes(gustd.pid) - before
        #expect(grown < 8_000_000, "gustd grew by \(grown / 1_000_000) MB for \(sent) health checks whose answers were not read")
        #expect(try fixture.call("GET", "/_/health").status == 200, "other clients are answered")
    }

    /// What `raw` has been sent back once it holds `count` whole answers, or after 10 s.
    static func awaitAnswers(_ count: Int, on raw: RawConnection) -> (text: String, answers: [(status: Int, body: String)]) {
        var text = ""
        var answers: [(status: Int, body: String)] = []
        for _ in 0..<200 where answers.count < count {
            usleep(50_000)
            text += raw.drain()
            answers = Self.answers(in: text)
        }
        return (text, answers)
    }

    /// A raw request for the python app's `tag` handler: it answers `{"n": N}`, after `slow` seconds.
    static func tag(_ n: Int, slow: String? = nil) -> String {
        "GET /apps/cats/tag HTTP/1.1\r\nHost: x\r\nX-N: \(n)\r\n" + (slow.map { "X-Slow: \($0)\r\n" } ?? "") + "\r\n"
    }

    /// The whole answers at the start of `text`, each framed by its `Content-Length`.
    static func answers(in text: String) -> [(status: Int, body: String)] {
        var rest = Substring(text)
        var found: [(status: Int, body: String)] = []
        while let end = rest.range(of: "\r\n\r\n") {
            let head = rest[..<end.lowerBound].split(separator: "\r\n")
            guard let statusLine = head.first, let status = Int(statusLine.split(separator: " ").dropFirst().first ?? ""),
                let length = head.dropFirst().first(where: { $0.lowercased().hasPrefix("content-length:") })
                    .flatMap({ Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) })
            else { break }
            let body = rest[end.upperBound...].utf8.prefix(length)
            guard body.count == length else { break }
            found.append((status, String(Substring(body))))
            rest = rest[body.endIndex...]
        }
        return found
    }

    static let node = """
        const gust = require('gust');
        const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

        gust.op('first', async () => {
          console.log('first starts');
          await sleep(400);
          console.log('first in the middle');
          process.stderr.write('first in ');
          process.stderr.write('pieces\\n');
          await sleep(400);
          console.log('first ends');
          return 'first';
        });

        gust.op('second', async () => {
          console.log('second starts');
          await sleep(600);
          console.log('second ends');
          return 'second';
        });

        """

    @Test(.scratchDirectory) func overlappingNodeCallsCreditEachLineToItsOwnCall() throws {
        let fixture = try PushFixture(app: "dogs")
        let work = try fixture.workspace("node")
        try work.write("package.json", #"{"name": "dogs", "main": "index.js"}"#)
        try work.write("index.js", Self.node)
        try work.commit("Overlap")
        let pushed = try work.push(to: fixture.remote)
        #expect(pushed.status == 0, "\(pushed.output)")
        // One instance taking both calls at once.
        let scaled = try GustBinaries.gust(fixture.home, ["scale", "dogs", "--min", "1", "--max", "1", "--concurrency", "4"])
        #expect(scaled.status == 0, "\(scaled.output)")
        _ = try fixture.call("POST", "/_/functions/second", body: "{}")  // the instance is up before the race

        // first starts; second starts 200 ms later and is still running when first prints its middle lines.
        let port = fixture.port
        let first = BackgroundCall { try HTTPClient.request(port: port, "POST", "/apps/dogs/_/functions/first", body: "{}").text }
        usleep(200_000)
        let second = try fixture.call("POST", "/_/functions/second", body: "{}")
        #expect(second.text == #""second""#)
        #expect(try first.wait(seconds: 10)?.get() == #""first""#)

        var entries: [LogEntry] = []
        for _ in 0..<40 {
            entries = AppLog(home: fixture.home, app: try AppName("dogs")).tail(100).filter { $0.line.hasPrefix("first") || $0.line.hasPrefix("second") }
            if entries.contains(where: { $0.line == "first ends" }) { break }
            usleep(50_000)
        }
        let lines = entries.map { "\($0.function ?? "-"): \($0.line)" }
        for name in ["first starts", "first in the middle", "first in pieces", "first ends"] {
            #expect(lines.contains("op first: \(name)"), "\(name) is first's: \(lines)")
        }
        #expect(lines.filter { $0.hasSuffix("second starts") }.allSatisfy { $0.hasPrefix("op second:") }, "\(lines)")
        #expect(entries.allSatisfy { !$0.line.contains("\u{1E}") && !$0.line.contains("\u{1F}") }, "tags are stripped: \(lines)")
    }

    /// A client's `Expect: 100-continue` reaches the function, and Node's server answers it with an
    /// interim `100 Continue` before the function's answer: gustd's framing (`InstanceAnswerDecoder`)
    /// reads past it, and the call's answer is the function's.
    @Test(.scratchDirectory) func aNodeFunctionCalledWithAnExpectationAnswersWithItsOwnAnswer() throws {
        let fixture = try PushFixture(app: "dogs")
        let work = try fixture.workspace("node")
        try work.write("package.json", #"{"name": "dogs", "main": "index.js"}"#)
        try work.write("index.js", "const gust = require('gust');\ngust.op('echo', async (args) => args);\n")
        try work.commit("Echo")
        let pushed = try work.push(to: fixture.remote)
        #expect(pushed.status == 0, "\(pushed.output)")
        for _ in 0..<3 {
            let answer = try fixture.call("POST", "/_/functions/echo", body: #"{"a": 1}"#, headers: ["Expect": "100-continue"])
            #expect(answer.status == 200, "\(answer.status) \(answer.text)")
            #expect(answer.json?["a"] as? Int == 1, "\(answer.text)")
        }
    }
}

