import Foundation
import GustCore
import GustTesting
@testable import GustDaemon
import Hummingbird
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import Testing

/// The gateway in-process, through Hummingbird's test client: what it answers
/// before any instance is involved (addresses, the internal surface, records'
/// token, an app with nothing live). No processes; a scratch store.
@Suite struct GatewayTests {
    /// `only`: gustd --only-app (every address is that app's); `challenges`: gustd issues certificates.
    func gateway(apps: [String], only: String? = nil, challenges: ChallengeResponder? = nil) throws -> some ApplicationProtocol {
        let home = GustHome(path: ScratchDirectory.current.appendingPathComponent("home").path)
        let store = try Store(home: home)
        for app in apps { _ = try store.createApp(try AppName(app)) }
        var configuration = RouterConfiguration(home: home)
        configuration.onlyApp = try only.map { try AppName($0) }
        let supervisor = try Supervisor(configuration: configuration, logger: Logger(label: "test"))
        let records = RecordsAPI(hub: RecordsHub(home: home, supervisor: supervisor))
        return Application(
            responder: Gateway(supervisor: supervisor, configuration: configuration, records: records, challenges: challenges),
            configuration: .init(address: .hostname("127.0.0.1", port: 0))
        )
    }

    func json(_ buffer: ByteBuffer) -> [String: Any]? {
        try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any]
    }

    @Test(.scratchDirectory) func addressesThatNameNoAppAre404JSON() async throws {
        try await gateway(apps: ["cats"]).test(.router) { client in
            for uri in ["/", "/elsewhere", "/apps/", "/apps/Bad_Name/x", "/apps/dogs/x"] {
                try await client.execute(uri: uri, method: .get) { response in
                    #expect(response.status == .notFound, "\(uri)")
                    #expect(json(response.body)?["code"] as? Int == 404, "\(uri)")
                }
            }
        }
    }

    /// Where gustd issues certificates, ACME's HTTP-01 path is its own on every name: an app it
    /// routes a name to (one added without owning it) never answers a CA there for itself.
    @Test(.scratchDirectory) func acmeChallengesAreGustdsAndNeverAnApps() async throws {
        // (The test client's host is `localhost`, no domain gustd issues for: the answer to a token
        // it waits on is `DomainRoutingTests`' and the end-to-end ACME test's.)
        let challenges = ChallengeResponder()
        let token = String(repeating: "t", count: 43)
        try await gateway(apps: ["cats"], only: "cats", challenges: challenges).test(.router) { client in
            for other in [token, "short", "\(token)/x"] {
                try await client.execute(uri: "/.well-known/acme-challenge/\(other)", method: .get) { response in
                    #expect(response.status == .notFound, "\(other): \(String(buffer: response.body))")
                    #expect((json(response.body)?["error"] as? String)?.contains("No ACME challenge") == true, "\(other)")
                }
            }
            // Any other path is the app's (here: nothing live).
            try await client.execute(uri: "/.well-known/other", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
            }
        }
    }

    /// A gateway as `gust dev` runs it (`--only-app cats`), with `cats` made and nothing live.
    func devGateway() throws -> Gateway {
        let home = GustHome(path: ScratchDirectory.current.appendingPathComponent("home").path)
        _ = try Store(home: home).createApp(try AppName("cats"))
        var configuration = RouterConfiguration(home: home)
        configuration.onlyApp = try AppName("cats")
        let supervisor = try Supervisor(configuration: configuration, logger: Logger(label: "test"))
        let gateway = Gateway(
            supervisor: supervisor, configuration: configuration, records: RecordsAPI(hub: RecordsHub(home: home, supervisor: supervisor)))
        return gateway
    }

    /// `gust dev`'s gustd (`--only-app`) answers a host that is not loopback 403, saying why: a page
    /// elsewhere that rebound its name to 127.0.0.1 reaches no function.
    @Test(.scratchDirectory) func theDevServerRefusesHostsThatAreNotLoopback() async throws {
        let gateway = try devGateway()
        // The router test client always says `localhost`: the request is made here, with its host.
        func answer(host: String) async throws -> Response {
            let request = Request(head: HTTPRequest(method: .get, scheme: "http", authority: host, path: "/hello"), body: .init(buffer: ByteBuffer()))
            return try await gateway.respond(
                to: request, context: GatewayContext(source: .init(channel: EmbeddedChannel(), logger: Logger(label: "test"))))
        }
        func text(_ response: Response) async throws -> String {
            let collected = Collected()
            try await response.body.write(CollectingWriter(collected: collected))
            return collected.text
        }
        let refused = try await answer(host: "rebind.example:8000")
        #expect(refused.status == .forbidden)
        #expect(try await text(refused).contains("only loopback names"))
        #expect(try await answer(host: "localhost:8000").status == .serviceUnavailable, "the app's, with nothing live")
    }

    /// A page anywhere may open a WebSocket to 127.0.0.1: the browser says `Host: 127.0.0.1:8000`
    /// (loopback, so the host check passes) and its own `Origin`. The dev app runs with the
    /// developer's `.env`, so only its own pages (a loopback origin) or no page (no Origin) may.
    @Test(.scratchDirectory) func theDevServerRefusesAWebSocketFromAnotherOrigin() async throws {
        let gateway = try devGateway()
        func answer(origin: String?) async throws -> Response {
            var head = HTTPRequest(method: .get, scheme: "http", authority: "127.0.0.1:8000", path: "/chat")
            head.headerFields[.upgrade] = "websocket"
            head.headerFields[.connection] = "Upgrade"
            head.headerFields[.secWebSocketKey] = "dGhlIHNhbXBsZSBub25jZQ=="
            head.headerFields[.secWebSocketVersion] = "13"
            if let origin { head.headerFields[.origin] = origin }
            return try await gateway.respond(
                to: Request(head: head, body: .init(buffer: ByteBuffer())),
                context: GatewayContext(source: .init(channel: EmbeddedChannel(), logger: Logger(label: "test"))))
        }
        for origin in ["https://evil.example", "http://127.0.0.1.evil.example:8000", "null", "http://evil@127.0.0.1:8000"] {
            #expect(try await answer(origin: origin).status == .forbidden, "\(origin)")
        }
        // Past the check, the app (nothing live here) answers.
        for origin in ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000", nil] {
            #expect(try await answer(origin: origin).status == .serviceUnavailable, "\(origin ?? "no Origin")")
        }
    }

    @Test(.scratchDirectory) func anAppWithNothingLiveIs503() async throws {
        try await gateway(apps: ["cats"]).test(.router) { client in
            try await client.execute(uri: "/apps/cats/hello", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect((json(response.body)?["error"] as? String)?.contains("no live release") == true)
            }
        }
    }

    @Test(.scratchDirectory) func theInternalSurfaceIsNotAnEndpointHoweverSpelt() async throws {
        try await gateway(apps: ["cats"]).test(.router) { client in
            for uri in ["/apps/cats/_gust/manifest", "/apps/cats/%5fgust/manifest", "/apps/cats/%5Fgust/hooks/before_save/cat",
                        "/apps/cats/x/../_gust/health", "/apps/cats//_gust/health", "/apps/cats/%255fgust/manifest", "/apps/cats/_/admin"] {
                try await client.execute(uri: uri, method: .post) { response in
                    #expect(response.status == .notFound, "\(uri)")
                    #expect((json(response.body)?["error"] as? String)?.hasPrefix("No endpoint") == true, "\(uri): \(String(buffer: response.body))")
                }
            }
        }
    }

    @Test(.scratchDirectory) func recordsNeedAnAppToken() async throws {
        try await gateway(apps: ["cats"]).test(.router) { client in
            for headers: HTTPFields in [[:], [HTTPField.Name("X-Auth-Token")!: "gust_not-a-token"]] {
                try await client.execute(uri: "/apps/cats/_/records/cat", method: .post, headers: headers, body: ByteBuffer(string: #"{"name": "tom"}"#)) { response in
                    #expect(response.status == .unauthorized)
                    #expect(json(response.body)?["code"] as? Int == 401)
                }
            }
        }
    }
}

/// What a call carries and what comes back with it, before any instance is involved.
@Suite struct GatewayHeaderTests {
    func gateway(maxBodyBytes: Int = 10 << 20) throws -> some ApplicationProtocol {
        let home = GustHome(path: ScratchDirectory.current.appendingPathComponent("home").path)
        _ = try Store(home: home).createApp(try AppName("cats"))
        let configuration = RouterConfiguration(home: home, maxBodyBytes: maxBodyBytes)
        let supervisor = try Supervisor(configuration: configuration, logger: Logger(label: "test"))
        return Application(
            responder: Gateway(supervisor: supervisor, configuration: configuration, records: RecordsAPI(hub: RecordsHub(home: home, supervisor: supervisor))),
            configuration: .init(address: .hostname("127.0.0.1", port: 0))
        )
    }

    static let requestID = HTTPField.Name("X-Request-Id")!

    @Test(.scratchDirectory) func everyAnswerEchoesASaneRequestIDAndReplacesAnOddOne() async throws {
        try await gateway().test(.router) { client in
            try await client.execute(uri: "/apps/dogs/x", method: .get, headers: [Self.requestID: "abc-123.x:y"]) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[Self.requestID] == "abc-123.x:y")
            }
            var made: Set<String> = []
            for odd in ["two words", String(repeating: "a", count: 129), "a\"b", "é", ""] {
                try await client.execute(uri: "/apps/cats/x", method: .get, headers: [Self.requestID: odd]) { response in
                    let id = response.headers[Self.requestID] ?? ""
                    #expect(!id.isEmpty && id != odd && RequestID.isSane(id), "\(odd) -> \(id)")
                    made.insert(id)
                }
            }
            #expect(made.count == 5, "each call gets an id of its own")
        }
    }

    @Test(.scratchDirectory) func aBodyDeclaredOverTheLimitIs413JSON() async throws {
        try await gateway(maxBodyBytes: 1 << 20).test(.router) { client in
            let body = ByteBuffer(repeating: UInt8(ascii: "x"), count: 2 << 20)
            try await client.execute(
                uri: "/apps/cats/_/functions/size", method: .post, headers: [.contentLength: String(body.readableBytes)], body: body
            ) { response in
                #expect(response.status == .contentTooLarge)
                #expect(response.headers[.contentType] == "application/json")
                let json = try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
                #expect(json?["code"] as? Int == 413)
                #expect((json?["error"] as? String)?.contains("1.0 MB") == true, "\(String(describing: json))")
            }
        }
    }

    @Test(.scratchDirectory) func anInstancesAnswerLosesHopByHopHeadersAndItsFramingInAnyCase() {
        let headers = HTTPHeaders([
            ("Connection", "close"), ("KEEP-ALIVE", "timeout=5"), ("Content-Length", "12"), ("transfer-Encoding", "chunked"),
            ("Upgrade", "h2c"), ("Date", "yesterday"), ("Host", "elsewhere"), ("TE", "trailers"), ("Trailer", "X"),
            ("Proxy-Authenticate", "Basic"), ("X-Custom", "kept"), ("Set-Cookie", "a=1"), ("set-cookie", "b=2"),
            ("bad name", "dropped"),
        ])
        let fields = Gateway.clientFields(of: headers)
        #expect(fields.map(\.name.canonicalName) == ["x-custom", "set-cookie", "set-cookie"], "\(fields)")
        #expect(fields.map(\.value) == ["kept", "a=1", "b=2"])
    }

    /// A browser keeps one host's cookies for all its ports: an app answering on the same host as
    /// the console could otherwise set the admin's console session (to the attacker's own) or clear it.
    @Test func anInstanceCannotSetTheConsolesCookies() {
        let headers = HTTPHeaders([
            ("Set-Cookie", "gust_session=attackers; Path=/; HttpOnly"), ("Set-Cookie", " gust_login =x"),
            ("Set-Cookie", "theme=dark"), ("Set-Cookie", "gust_sessions=kept; Path=/"), ("Set-Cookie", "gust_login"),
            ("Set-Cookie", "__Host-gust_session=attackers; Path=/; Secure"),
        ])
        #expect(Gateway.clientFields(of: headers).map(\.value) == ["theme=dark", "gust_sessions=kept; Path=/"])
    }

    /// At `APP.DOMAIN` every app's host shares `DOMAIN`: a cookie for any domain but the app's own
    /// host is dropped, as a browser would read its `Domain` (the last one not empty, no leading dot,
    /// any case). At a path address the headers that act on the whole origin or host are dropped.
    @Test func anAnswerSetsNothingForTheDomainOrOriginItsAppShares() {
        let cookies = HTTPHeaders([
            ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=1; Domain=cats.gust.example"), ("Set-Cookie", "c=1; domain=.CATS.gust.example"),
            ("Set-Cookie", "d=1; Domain=gust.example"), ("Set-Cookie", "e=1; Domain=.gust.example; Path=/"),
            ("Set-Cookie", "f=1; Domain=cats.gust.example; Domain=example"), ("Set-Cookie", "g=1; Domain=gust.example; Domain="),
            ("Set-Cookie", "h=1; Domain=dogs.gust.example"), ("Set-Cookie", "i=1; Domain ; Path=/"),
        ])
        let own = AnswerScope(cookieHost: "cats.gust.example")
        #expect(Gateway.clientFields(of: cookies, scope: own).map(\.value) == [
            "a=1; Path=/", "b=1; Domain=cats.gust.example", "c=1; domain=.CATS.gust.example", "i=1; Domain ; Path=/",
        ])
        #expect(Gateway.clientFields(of: cookies).count == 9, "an own domain's or a path address's cookies are not judged by domain")

        let originWide = HTTPHeaders([
            ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"), ("Service-Worker-Allowed", "/"),
            ("Clear-Site-Data", "\"cookies\""), ("X-Kept", "yes"),
        ])
        #expect(Gateway.clientFields(of: originWide, scope: AnswerScope(sharesOrigin: true)).map(\.name.canonicalName) == ["x-kept"])
        #expect(Gateway.clientFields(of: originWide, scope: own).count == 4)
    }

    @Test(.scratchDirectory) func gustdIsTheEdgeByDefault() {
        let forwarding = ForwardedHeaders(scheme: "http", trustedProxies: [])
        let sent: HTTPFields = [
            HTTPField.Name("X-Forwarded-For")!: "6.6.6.6", HTTPField.Name("X-Forwarded-Proto")!: "https",
            HTTPField.Name("X-Gust-Internal")!: "guess", HTTPField.Name("X-Gust-Call")!: "1",
            HTTPField.Name("X-Request-Id")!: "old", .connection: "close", HTTPField.Name("Accept")!: "*/*",
            // What an app behind a proxy might believe: the host for its links, the client's address.
            HTTPField.Name("X-Forwarded-Host")!: "evil.example", HTTPField.Name("Forwarded")!: "for=6.6.6.6",
            HTTPField.Name("X-Real-IP")!: "6.6.6.6", HTTPField.Name("X_Forwarded_For")!: "6.6.6.6",
            HTTPField.Name("x_gust_internal")!: "guess", HTTPField.Name("X_Custom")!: "kept",
        ]
        let headers = forwarding.headers(of: sent, peer: "10.0.0.7", requestID: "new")
        for name in ["X-Forwarded-Host", "Forwarded", "X-Real-IP", "X_Forwarded_For", "x_gust_internal"] {
            #expect(headers[name].isEmpty, "\(name): \(headers[name])")
        }
        #expect(headers["X_Custom"] == ["kept"], "a name with _ that stands for nothing of gustd's passes")
        let fromProxy = ForwardedHeaders(scheme: "http", trustedProxies: ["10.0.0.7"]).headers(of: sent, peer: "10.0.0.7", requestID: "new")
        #expect(fromProxy["X-Forwarded-Host"] == ["evil.example"] && fromProxy["X-Real-IP"] == ["6.6.6.6"], "a trusted proxy's are kept")
        #expect(fromProxy["X_Forwarded_For"].isEmpty)
        #expect(headers["X-Forwarded-For"] == ["10.0.0.7"])
        #expect(headers["X-Forwarded-Proto"] == ["http"])
        #expect(headers["X-Request-Id"] == ["new"])
        #expect(headers["Accept"] == ["*/*"])
        #expect(!headers.contains { $0.name.lowercased().hasPrefix("x-gust-") || $0.name.lowercased() == "connection" })
        // The rest of what proxies say about the client and the URL it asked for, and frameworks
        // believe behind one (Werkzeug's ProxyFix reads the port and prefix; IIS and Symfony the
        // original URL; CDNs name the client): from a client, none of it passes.
        let claims = ["X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Server", "X-Forwarded-Ssl", "X-Forwarded-Scheme",
                      "X-Original-URL", "X-Rewrite-URL", "X-Original-Host", "True-Client-IP", "X-Client-IP", "X-Cluster-Client-IP",
                      "CF-Connecting-IP", "Fastly-Client-IP", "X-Forwarded", "Forwarded-For", "X_Forwarded_Prefix"]
        var claimed = HTTPFields()
        for name in claims { claimed.append(HTTPField(name: HTTPField.Name(name)!, value: "/admin")) }
        let passed = forwarding.headers(of: claimed, peer: "10.0.0.7", requestID: "new")
        for name in claims { #expect(passed[name].isEmpty, "\(name) from a client: \(passed[name])") }
        let proxied = ForwardedHeaders(scheme: "http", trustedProxies: ["10.0.0.7"]).headers(of: claimed, peer: "10.0.0.7", requestID: "new")
        #expect(proxied["X-Forwarded-Prefix"] == ["/admin"] && proxied["True-Client-IP"] == ["/admin"], "a trusted proxy's are kept")
    }

    /// Browsers do not keep cookies apart by port: an admin signed in to the console on the same
    /// host sends its session with every call to every app. No function gets the console's cookies.
    @Test func theConsolesCookiesNeverReachAFunction() {
        let forwarding = ForwardedHeaders(scheme: "http", trustedProxies: [])
        let sent: HTTPFields = [.cookie: "theme=dark; gust_session=s3cr3t; gust_login=l0g1n;__Host-gust_session=s3cr3t;lang=fr", .accept: "*/*"]
        #expect(forwarding.headers(of: sent, peer: nil, requestID: "r")["Cookie"] == ["theme=dark; lang=fr"])
        let plain = forwarding.headers(ofPlain: [("Cookie", "gust_session=s3cr3t"), ("cookie", " gust_login=x ; a=b")], peer: nil, requestID: "r")
        #expect(plain["Cookie"] == ["a=b"], "a Cookie left with nothing is not sent")
        let untouched = forwarding.headers(of: [.cookie: "gust_sessions=kept; my_gust_session=kept"], peer: nil, requestID: "r")
        #expect(untouched["Cookie"] == ["gust_sessions=kept; my_gust_session=kept"])
    }

    @Test(.scratchDirectory) func aTrustedProxysForwardedForIsAppendedTo() {
        let forwarding = ForwardedHeaders(scheme: "http", trustedProxies: ["10.0.0.1"])
        let sent: HTTPFields = [HTTPField.Name("X-Forwarded-For")!: "203.0.113.9", HTTPField.Name("X-Forwarded-Proto")!: "https"]
        let proxied = forwarding.headers(of: sent, peer: "10.0.0.1", requestID: "r")
        #expect(proxied["X-Forwarded-For"] == ["203.0.113.9, 10.0.0.1"])
        #expect(proxied["X-Forwarded-Proto"] == ["https"])
        let direct = forwarding.headers(of: sent, peer: "10.0.0.2", requestID: "r")
        #expect(direct["X-Forwarded-For"] == ["10.0.0.2"])
        #expect(direct["X-Forwarded-Proto"] == ["http"])
        let https = ForwardedHeaders(scheme: "https", trustedProxies: []).headers(of: [:], peer: nil, requestID: "r")
        #expect(https["X-Forwarded-Proto"] == ["https"] && https["X-Forwarded-For"].isEmpty)
    }

    @Test(.scratchDirectory) func anAccessLogLineNamesTheCallWithoutItsQuery() {
        let line = AccessLog.line(AccessLog.Entry(
            app: "cats", release: 3, instance: "ab12", method: "GET", path: "/cat/feed\"\u{7}x y",
            status: 200, bytes: 13, duration: .microseconds(1234), requestID: "rid", time: 1_764_612_601.0055
        ))
        #expect(line == "2025-12-01T18:10:01.005Z app=cats release=v3 instance=ab12 method=GET path=/cat/feed%22%07x%20y status=200 bytes=13 ms=1.234 id=rid\n")
        let early = AccessLog.line(AccessLog.Entry(
            app: nil, release: nil, instance: nil, method: "GET", path: "/", status: 404, bytes: 0, duration: .zero, requestID: "r", time: 0
        ))
        #expect(early == "1970-01-01T00:00:00.000Z app=- release=- instance=- method=GET path=/ status=404 bytes=0 ms=0.000 id=r\n")
        // The writer's batches: lines share their second's stamp until the second changes.
        var batch: [UInt8] = []
        var stamp = AccessLog.Stamp()
        for (time, millis) in [(1_764_612_601.25, 0), (1_764_612_601.999, 61_000), (1_764_612_602.0, 7)] {
            AccessLog.append(AccessLog.Entry(
                app: "cats", release: 12, instance: nil, method: "POST", path: "", status: 503, bytes: 1_048_576,
                duration: .milliseconds(millis), requestID: "r", time: time), to: &batch, stamp: &stamp)
        }
        #expect(String(decoding: batch, as: UTF8.self) == """
            2025-12-01T18:10:01.250Z app=cats release=v12 instance=- method=POST path=/ status=503 bytes=1048576 ms=0.000 id=r
            2025-12-01T18:10:01.999Z app=cats release=v12 instance=- method=POST path=/ status=503 bytes=1048576 ms=61000.000 id=r
            2025-12-01T18:10:02.000Z app=cats release=v12 instance=- method=POST path=/ status=503 bytes=1048576 ms=7.000 id=r

            """)
    }

    /// What waits for the access log's writer holds at most `maxPathBytes` of a path: 10,000 queued
    /// entries with 80 KB paths were 800 MB of gustd's memory.
    @Test func aQueuedEntryKeepsOnlyThePathALineWould() {
        let long = AccessLog.Entry(
            app: nil, release: nil, instance: nil, method: "GET", path: "/" + String(repeating: "é", count: 40_000),
            status: 404, bytes: 0, duration: .zero, requestID: "r", time: 0
        )
        let queued = AccessLog.queued(long)
        #expect(queued.path.utf8.count <= AccessLog.maxPathBytes && queued.path.utf8.count > AccessLog.maxPathBytes - 4)
        #expect(long.path.hasPrefix(queued.path), "cut between characters")
        let short = AccessLog.Entry(app: "cats", release: 1, instance: nil, method: "GET", path: "/a", status: 200, bytes: 1, duration: .zero, requestID: "r", time: 0)
        #expect(AccessLog.queued(short).path == "/a")
    }

    @Test(.scratchDirectory) func callTagsAreReadAndStripped() {
        let tagged = CallTag.split("\u{1E}42\u{1F}hello")
        #expect(tagged?.call == "42" && tagged?.line == "hello")
        let empty = CallTag.split("\u{1E}42\u{1F}")
        #expect(empty?.call == "42" && empty?.line == "")
        #expect(CallTag.split("hello") == nil)
        #expect(CallTag.split("\u{1E}4x\u{1F}hello") == nil)
        #expect(CallTag.split("\u{1E}\u{1F}hello") == nil)
        #expect(CallTag.next() != CallTag.next())
        // The function a request runs, as its output is credited: by path, without the query.
        let function = { (target: String) in InstanceRequest(method: .GET, target: target).function }
        #expect(function("/hello?x=1") == "handler /hello")
        #expect(function("/a/b") == "handler /a/b")
        #expect(function("/_gust/ops/greet%20x?y=1") == "op greet x")
        #expect(function("/_gust/schedules/nightly") == "schedule nightly")
        #expect(function("/_gust/hooks/after_save/cats") == "hook after_save cats")
        #expect(function("/_gust/manifest") == nil, "gustd's own call")
        var calls = CallFunctions()
        calls.begin("1", "op first")
        calls.begin("2", "op second")
        calls.end("1")
        #expect(calls.function(of: "1") == "op first", "a line may come just after its call ended")
        #expect(calls.function(of: "2") == "op second")
        #expect(calls.function(of: "3") == nil)
        // Ended calls are remembered, the newest `remembered` of them.
        for call in 3...300 {
            calls.begin(String(call), "op \(call)")
            calls.end(String(call))
        }
        #expect(calls.function(of: "1") == nil && calls.function(of: "44") == nil, "forgotten, oldest first")
        #expect(calls.function(of: "45") == "op 45" && calls.function(of: "300") == "op 300")
        #expect(calls.function(of: "2") == "op second", "still running")
    }

    @Test(.scratchDirectory) func theStoreIsReadOnThePoolNeverOnTheCallersEventLoop() async throws {
        let home = GustHome(path: ScratchDirectory.current.appendingPathComponent("home").path)
        let access = try StoreAccess(home: home)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let ran = try await loop.makeFutureWithTask {
            try await access.run { _ in (MultiThreadedEventLoopGroup.currentEventLoop == nil, Thread.current.name ?? "") }
        }.get()
        #expect(ran.0, "the body ran on an event loop")
        #expect(ran.1.contains("TP-#"), "NIO's thread pool names its threads (SGLTN-)TP-#N: \(ran.1)")
    }
}

/// gustd's own request ids: its run's prefix, then the counter in hex.
@Suite struct RequestIDTests {
    @Test(.scratchDirectory) func anIDIsThePrefixAndTheCountInHex() {
        for count: UInt64 in [0, 1, 9, 10, 15, 16, 255, 256, 0xDEAD_BEEF, .max] {
            let id = RequestID.make(count: count)
            let parts = id.split(separator: "-")
            #expect(parts.count == 2 && parts[0].count == 16 && RequestID.isSane(id), "\(id)")
            #expect(parts.last.map(String.init) == String(count, radix: 16), "\(id)")
            #expect(parts[0] == RequestID.make(count: 0).split(separator: "-")[0])
        }
    }
}

/// A response body's bytes, written by `CollectingWriter`.
private final class Collected: @unchecked Sendable {
    var text = ""
}

private struct CollectingWriter: ResponseBodyWriter {
    let collected: Collected
    mutating func write(_ buffer: ByteBuffer) async throws { collected.text += String(buffer: buffer) }
    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
