import Foundation
@testable import GustConsole
import GustCore
import GustTesting
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization
import Testing

/// The console in-process, through Hummingbird's test client, with a real
/// store and a fake backend (no gustd, no instances): sign-in, sessions, CSRF,
/// scopes, security headers and escaping.
@Suite struct ConsoleServerTests {
    /// The store is real; what gustd would serve is canned.
    final class FakeBackend: ConsoleBackend, Sendable {
        let home: GustHome
        private let store: Mutex<Store>
        let saved = Mutex<[RecordStore.Record]>([])

        init(home: GustHome) throws {
            self.home = home
            store = Mutex(try Store(home: home))
        }

        /// How many times the store was asked for: its one connection is every private app's token check's too.
        let storeUses = Atomic(0)

        func withStore<T: Sendable>(_ body: @escaping @Sendable (Store) throws -> T) async throws -> T {
            storeUses.add(1, ordering: .relaxed)
            return try store.withLock { try body($0) }
        }
        func offTheLoops<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T { try body() }
        func live(_ app: AppName) -> ConsoleLiveState? { ConsoleLiveState(version: 1, state: "running", instances: 1) }
        func history(_ app: AppName, minutes: Int) -> [ConsoleMinute] {
            (0..<minutes).map { minute in
                ConsoleMinute(
                    calls: minute, errors: 0,
                    latency: minute % 3 == 0 ? nil : ConsoleLatency(p50: Double(minute), p95: Double(minute * 2), p99: Double(minute * 3)),
                    instances: ConsoleInstanceCounts(starting: 0, idle: 1, busy: minute % 2)
                )
            }
        }
        func functionHistory(_ app: AppName, minutes: Int) -> [ConsoleFunctionHistory] {
            let quiet = ConsoleMinute(calls: 0, errors: 0)
            let busy = ConsoleMinute(calls: 4, errors: 1, latency: ConsoleLatency(p50: 10, p95: 20, p99: 40))
            return [
                ConsoleFunctionHistory(kind: "op", name: "charge", minutes: Array(repeating: quiet, count: minutes - 1) + [busy]),
                ConsoleFunctionHistory(kind: "op", name: "<script>alert(1)</script>", minutes: Array(repeating: busy, count: minutes)),
            ]
        }
        func instances(_ app: AppName) async -> [InstanceStatus] { [] }
        func operations(_ app: AppName) -> [String] { ["<script>alert(1)</script>"] }
        func deploy(_ app: AppName, version: Int) async throws -> String { "http://localhost/" }
        func call(_ app: AppName, op: String, arguments: Data) async -> ConsoleAnswer { ConsoleAnswer(status: 200, body: "\"ok\"") }
        func records(_ app: AppName, type: String, query: RecordStore.Query) async throws -> [RecordStore.Record] {
            [["_id": .string("r1"), "name": .string("</script><img src=x onerror=alert(1)>")]]
        }
        func record(_ app: AppName, type: String, id: String) async throws -> RecordStore.Record {
            ["_id": .string(id), "name": .string("<script>alert(1)</script>")]
        }
        func saveRecord(_ app: AppName, type: String, id: String?, fields: RecordStore.Record) async throws -> RecordStore.Record {
            if fields["name"] == .string("Rex") { throw GustError("Rex is <b>not</b> a cat name", code: 400) }
            saved.withLock { $0.append(fields) }
            return fields
        }
        func deleteRecord(_ app: AppName, type: String, id: String) async throws {}
        func recordTypes(_ app: AppName) async -> [String] { ["cat"] }
        let reconciled = Atomic<Int>(0)
        func reconcile() async { reconciled.add(1, ordering: .relaxed) }
        let domainRefreshes = Atomic<Int>(0)
        func refreshDomains() async { domainRefreshes.add(1, ordering: .relaxed) }
    }

    struct Setup {
        var backend: FakeBackend
        var admin: String
        var scoped: String
        var adminID: Int
    }

    func setup() throws -> Setup {
        let home = GustHome(path: ScratchDirectory.current.appendingPathComponent("home").path)
        let store = try Store(home: home)
        for app in ["cats", "dogs"] { _ = try store.createApp(try AppName(app)) }
        let admin = try store.createConsoleToken(apps: nil, description: "admin", expiresAt: nil)
        let scoped = try store.createConsoleToken(apps: [try AppName("cats")], description: "", expiresAt: nil)
        return Setup(backend: try FakeBackend(home: home), admin: admin.secret, scoped: scoped.secret, adminID: admin.token.id)
    }

    func application(_ backend: FakeBackend) -> some ApplicationProtocol {
        Application(responder: ConsoleServer(backend: backend), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }

    static let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]

    /// Signs in with `token`; returns the session cookie and the CSRF token of its pages.
    func signIn(_ client: some TestClientProtocol, _ token: String) async throws -> (cookie: String, csrf: String) {
        let loginCookie = try await client.execute(uri: "/login", method: .get) { response in
            try #require(response.headers[.setCookie]?.split(separator: ";").first.map(String.init))
        }
        let loginCSRF = String(loginCookie.split(separator: "=")[1])
        var headers = Self.form
        headers[.cookie] = loginCookie
        let cookie = try await client.execute(
            uri: "/login", method: .post, headers: headers, body: ByteBuffer(string: "csrf=\(loginCSRF)&token=\(token)")
        ) { response in
            #expect(response.status == .seeOther)
            let cookies = response.headers[values: .setCookie]
            let session = try #require(cookies.first { $0.hasPrefix("gust_session=") })
            #expect(session.contains("HttpOnly") && session.contains("SameSite=Strict") && !session.contains("Secure"))
            return String(session.split(separator: ";")[0])
        }
        let page = try await client.execute(uri: "/", method: .get, headers: [.cookie: cookie]) { String(buffer: $0.body) }
        let csrf = try #require(page.firstMatch(of: /name="csrf" value="([^"]+)"/)?.1)
        return (cookie, String(csrf))
    }

    @Test(.scratchDirectory) func pagesNeedASignInAndEveryAnswerForbidsInlineScript() async throws {
        let setup = try setup()
        try await application(setup.backend).test(.router) { client in
            try await client.execute(uri: "/apps/cats", method: .get) { response in
                #expect(response.status == .seeOther)
                #expect(response.headers[.location] == "/login")
                #expect(response.headers[HTTPField.Name("Content-Security-Policy")!]?.contains("script-src 'self'") == true)
                #expect(response.headers[HTTPField.Name("X-Frame-Options")!] == "DENY")
                #expect(response.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
            }
            try await client.execute(uri: "/static/console.js", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("textContent"))
                #expect(!String(buffer: response.body).contains("innerHTML"))
            }
            try await client.execute(uri: "/login", method: .get) { response in
                #expect(!String(buffer: response.body).contains("<script>"), "no inline script")
            }
        }
    }

    /// A session cookie sent twice names no session: the second is one another host of the domain
    /// set with `Domain=` (an app's page at `cats.example.com`, for `console.example.com`), and
    /// the browser sends both in an order that host can choose. The last one won, so an app could
    /// have an admin's browser act in a session of the app's own scoped token.
    @Test(.scratchDirectory) func aSessionCookieSentTwiceNamesNoSession() async throws {
        let setup = try setup()
        try await application(setup.backend).test(.router) { client in
            let admin = try await signIn(client, setup.admin)
            let tenant = try await signIn(client, setup.scoped)
            try await client.execute(uri: "/", method: .get, headers: [.cookie: admin.cookie]) { #expect($0.status == .ok) }
            for cookies in ["\(admin.cookie); \(tenant.cookie)", "\(tenant.cookie); \(admin.cookie)"] {
                try await client.execute(uri: "/", method: .get, headers: [.cookie: cookies]) { response in
                    #expect(response.status == .seeOther, "\(cookies)")
                    #expect(response.headers[.location] == "/login")
                }
            }
            var split = HTTPFields()
            split.append(HTTPField(name: .cookie, value: admin.cookie))
            split.append(HTTPField(name: .cookie, value: tenant.cookie))
            try await client.execute(uri: "/", method: .get, headers: split) { #expect($0.status == .seeOther, "two Cookie fields") }
        }
    }

    /// Over HTTPS both cookies are named `__Host-…`, which browsers take only from the console's
    /// own host: a sibling host's `gust_session` is not read at all.
    @Test(.scratchDirectory) func overHTTPSTheCookiesCarryTheHostPrefixAndNoOtherIsRead() async throws {
        let setup = try setup()
        let app = Application(responder: ConsoleServer(backend: setup.backend, secure: true), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.router) { client in
            let login = try await client.execute(uri: "/login", method: .get) { try #require($0.headers[.setCookie]) }
            #expect(login.hasPrefix("__Host-gust_login=") && login.contains("Secure") && login.contains("Path=/") && !login.contains("Domain"), "\(login)")
            let loginCookie = String(login.split(separator: ";")[0])
            var headers = Self.form
            headers[.cookie] = loginCookie
            let session = try await client.execute(
                uri: "/login", method: .post, headers: headers,
                body: ByteBuffer(string: "csrf=\(loginCookie.split(separator: "=")[1])&token=\(setup.admin)")
            ) { response in
                try #require(response.headers[values: .setCookie].first { $0.hasPrefix("__Host-gust_session=") })
            }
            #expect(session.contains("Secure") && session.contains("HttpOnly"), "\(session)")
            let id = String(session.split(separator: ";")[0].split(separator: "=")[1])
            try await client.execute(uri: "/", method: .get, headers: [.cookie: "__Host-gust_session=\(id)"]) { #expect($0.status == .ok) }
            try await client.execute(uri: "/", method: .get, headers: [.cookie: "gust_session=\(id)"]) { #expect($0.status == .seeOther) }
        }
    }

    @Test(.scratchDirectory) func aWrongTokenOrAMissingLoginCSRFSignsNobodyIn() async throws {
        let setup = try setup()
        try await application(setup.backend).test(.router) { client in
            try await client.execute(uri: "/login", method: .post, headers: Self.form, body: ByteBuffer(string: "token=\(setup.admin)")) {
                #expect($0.status == .forbidden)
                #expect($0.headers[values: .setCookie].allSatisfy { !$0.hasPrefix("gust_session=") })
            }
            let login = try await client.execute(uri: "/login", method: .get) { $0.headers[.setCookie]!.split(separator: ";")[0] }
            var headers = Self.form
            headers[.cookie] = String(login)
            let csrf = login.split(separator: "=")[1]
            try await client.execute(uri: "/login", method: .post, headers: headers, body: ByteBuffer(string: "csrf=\(csrf)&token=gustc_nope")) {
                #expect($0.status == .unauthorized)
            }
        }
    }

    /// Anyone may post to `/login`: its form (a token and the login CSRF) is read only with the
    /// login cookie, and at most `maxSignInBytes` of it, not the megabyte a record form may be.
    @Test(.scratchDirectory) func aSignInFormIsReadOnlyWithItsCookieAndOnlyAFewKilobytes() async throws {
        let setup = try setup()
        try await application(setup.backend).test(.router) { client in
            let large = "csrf=x&token=" + String(repeating: "a", count: 64 * 1024)
            try await client.execute(uri: "/login", method: .post, headers: Self.form, body: ByteBuffer(string: large)) {
                #expect($0.status == .forbidden, "no login cookie: refused before the form")
            }
            let login = try await client.execute(uri: "/login", method: .get) { $0.headers[.setCookie]!.split(separator: ";")[0] }
            var headers = Self.form
            headers[.cookie] = String(login)
            try await client.execute(uri: "/login", method: .post, headers: headers, body: ByteBuffer(string: large)) {
                #expect($0.status == .contentTooLarge)
            }
        }
    }

    /// The logs page reads the app's log (megabytes, for a `function` that matches nothing) without
    /// the store: the store's one connection also checks every private app's tokens, and a tenant
    /// reloading that page held it for every other tenant. Only the session and the app are looked up there.
    @Test(.scratchDirectory) func theLogsPageReadsTheLogWithoutTheStore() async throws {
        let setup = try setup()
        try await application(setup.backend).test(.router) { client in
            let (cookie, _) = try await signIn(client, setup.admin)
            let before = setup.backend.storeUses.load(ordering: .relaxed)
            try await client.execute(uri: "/apps/cats/logs?function=zzz", method: .get, headers: [.cookie: cookie]) {
                #expect($0.status == .ok)
            }
            #expect(setup.backend.storeUses.load(ordering: .relaxed) - before == 2, "the session's and the app's lookups only")
        }
    }

    @Test(.scratchDirectory) func aPostWithoutTheSessionsCSRFTokenChangesNothing() async throws {
        let setup = try setup()
        try await application(setup.backend).test(.router) { client in
            let (cookie, csrf) = try await signIn(client, setup.admin)
            var headers = Self.form
            headers[.cookie] = cookie
            for body in ["name=FOO&value=bar", "name=FOO&value=bar&csrf=forged"] {
                try await client.execute(uri: "/apps/cats/config", method: .post, headers: headers, body: ByteBuffer(string: body)) {
                    #expect($0.status == .forbidden)
                }
            }
            #expect(try await setup.backend.withStore { try $0.configVars(try AppName("cats")) }.isEmpty)
            try await client.execute(uri: "/apps/cats/config", method: .post, headers: headers, body: ByteBuffer(string: "name=FOO&value=bar&csrf=\(csrf)")) {
                #expect($0.status == .seeOther)
            }
            #expect(try await setup.backend.withStore { try $0.configVars(try AppName("cats")) }.map(\.name) == ["FOO"])
            let activity = try await setup.backend.withStore { try $0.activity(app: try AppName("cats")) }
            #expect(activity.first?.source == "console" && activity.first?.action == "config", "\(activity)")
        }
    }

    @Test(.scratchDirectory) func aScopedTokenSeesOnlyItsAppsAndAnotherIsNotFoundEvenByItsURL() async throws {
        let setup = try setup()
        try await application(setup.backend).test(.router) { client in
            let (cookie, csrf) = try await signIn(client, setup.scoped)
            let overview = try await client.execute(uri: "/", method: .get, headers: [.cookie: cookie]) { String(buffer: $0.body) }
            #expect(overview.contains("data-app=\"cats\"") && !overview.contains("dogs"))
            for uri in ["/apps/dogs", "/apps/dogs/logs", "/apps/dogs/records?type=cat", "/apps/dogs/releases/1", "/apps/nope"] {
                try await client.execute(uri: uri, method: .get, headers: [.cookie: cookie]) { #expect($0.status == .notFound, "\(uri)") }
            }
            var headers = Self.form
            headers[.cookie] = cookie
            try await client.execute(uri: "/apps/dogs/config", method: .post, headers: headers, body: ByteBuffer(string: "name=A&value=b&csrf=\(csrf)")) {
                #expect($0.status == .notFound)
            }
            #expect(try await setup.backend.withStore { try $0.configVars(try AppName("dogs")) }.isEmpty)
            try await client.execute(uri: "/apps/cats", method: .get, headers: [.cookie: cookie]) { #expect($0.status == .ok) }
        }
    }

    @Test(.scratchDirectory) func whatAnAppControlsIsEscapedAndAHooksRefusalIsShown() async throws {
        let setup = try setup()
        try await application(setup.backend).test(.router) { client in
            let (cookie, csrf) = try await signIn(client, setup.admin)
            for uri in ["/apps/cats", "/apps/cats/logs", "/apps/cats/records?type=cat", "/apps/cats/records/cat/r1"] {
                let page = try await client.execute(uri: uri, method: .get, headers: [.cookie: cookie]) { String(buffer: $0.body) }
                #expect(!page.contains("<script>alert") && !page.contains("<img"), "\(uri)")
                #expect(!page.contains(">nil<"), "\(uri): an absent value rendered as nil")
                #expect(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;") || page.contains("&lt;/script&gt;&lt;img"), "\(uri)")
            }
            var headers = Self.form
            headers[.cookie] = cookie
            let fields = #"{"name":"Rex"}"#.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            try await client.execute(uri: "/apps/cats/records/cat/r1", method: .post, headers: headers, body: ByteBuffer(string: "fields=\(fields)&csrf=\(csrf)")) { response in
                #expect(response.status == .unprocessableContent)
                #expect(String(buffer: response.body).contains("Rex is &lt;b&gt;not&lt;/b&gt; a cat name"))
            }
            #expect(setup.backend.saved.withLock { $0 }.isEmpty)
        }
    }

    @Test(.scratchDirectory) func aRevokedTokensSessionEndsAtItsNextRequest() async throws {
        let setup = try setup()
        try await application(setup.backend).test(.router) { client in
            let (cookie, _) = try await signIn(client, setup.admin)
            try await client.execute(uri: "/", method: .get, headers: [.cookie: cookie]) { #expect($0.status == .ok) }
            try await setup.backend.withStore { [id = setup.adminID] in try $0.revokeConsoleToken(id: id) }
            try await client.execute(uri: "/", method: .get, headers: [.cookie: cookie]) {
                #expect($0.status == .seeOther)
                #expect($0.headers[.location] == "/login")
            }
        }
    }

    /// A log stream was checked once, at its start, and then ran its ten minutes whatever
    /// became of its session: now it ends at its next check after a sign-out or a revocation.
    @Test(.scratchDirectory) func aLogStreamEndsOnceItsTokenIsRevoked() async throws {
        let setup = try setup()
        let server = ConsoleServer(backend: setup.backend, streamRecheck: .milliseconds(50))
        let app = Application(responder: server, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.router) { client in
            let (cookie, _) = try await signIn(client, setup.admin)
            let ended = try await withThrowingTaskGroup(of: Bool.self) { group in
                // The router's client collects the whole body: it returns once the stream has ended.
                group.addTask {
                    try await client.execute(uri: "/apps/cats/logs/stream", method: .get, headers: [.cookie: cookie]) { response in
                        #expect(response.status == .ok)
                        #expect(String(buffer: response.body).hasPrefix("retry: 2000"))
                    }
                    return true
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(300))  // the stream has begun, its request checked
                    try await setup.backend.withStore { [id = setup.adminID] in try $0.revokeConsoleToken(id: id) }
                    try await Task.sleep(for: .seconds(30))
                    return false
                }
                let first = try await group.next() ?? false
                group.cancelAll()
                return first
            }
            #expect(ended, "the stream ran on 30 s after its token was revoked")
        }
    }

    /// One token has at most `ConsoleStreamSlots.perToken` log streams open: the next is 429, and
    /// a stream that ended gives its slot back.
    @Test(.scratchDirectory) func aTokenHasABoundedNumberOfLogStreamsOpen() async throws {
        let setup = try setup()
        let server = ConsoleServer(backend: setup.backend, streamRecheck: .milliseconds(50))
        let app = Application(responder: server, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        let limit = ConsoleStreamSlots.perToken
        try await app.test(.router) { client in
            let (cookie, _) = try await signIn(client, setup.admin)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<limit {
                    group.addTask {
                        try await client.execute(uri: "/apps/cats/logs/stream", method: .get, headers: [.cookie: cookie]) { #expect($0.status == .ok) }
                    }
                }
                let deadline = ContinuousClock.now + .seconds(30)
                while server.streams.count(token: setup.adminID) < limit, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(5))
                }
                #expect(server.streams.count(token: setup.adminID) == limit)
                try await client.execute(uri: "/apps/cats/logs/stream", method: .get, headers: [.cookie: cookie]) {
                    #expect($0.status == .tooManyRequests)
                    #expect(String(buffer: $0.body).contains("log streams open already"))
                }
                // Revoked: the streams end at their next check, and their slots are given back.
                try await setup.backend.withStore { [id = setup.adminID] in try $0.revokeConsoleToken(id: id) }
                try await group.waitForAll()
            }
            #expect(server.streams.count(token: setup.adminID) == 0)
        }
    }

    @Test(.scratchDirectory) func cookiesAreSecureOverHTTPSOnlyAsATrustedProxySaysIt() async throws {
        let setup = try setup()
        let https: HTTPFields = [HTTPField.Name("X-Forwarded-Proto")!: "https"]
        for (server, expected) in [
            (ConsoleServer(backend: setup.backend), false),  // an untrusted peer's word is not taken
            (ConsoleServer(backend: setup.backend, secure: true), true),
        ] {
            let app = Application(responder: server, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
            try await app.test(.router) { client in
                try await client.execute(uri: "/login", method: .get, headers: https) { response in
                    #expect(response.headers[.setCookie]?.hasSuffix("; Secure") == expected)
                }
            }
        }
        let proxied = ConsoleServer(backend: setup.backend, trustedProxies: ["10.0.0.2"])
        let request = Request(head: HTTPRequest(method: .get, scheme: nil, authority: nil, path: "/", headerFields: https), body: .init(buffer: ByteBuffer()))
        #expect(proxied.isSecure(request, peer: "10.0.0.2"))
        #expect(!proxied.isSecure(request, peer: "10.0.0.3"))
    }

    @Test(.scratchDirectory) func sessionsAreKeptHashedAndExpireAndEndWithTheirToken() throws {
        let setup = try setup()
        let store = try Store(home: setup.backend.home)
        let now = Date()
        let session = try store.openConsoleSession(tokenID: setup.adminID, lifetime: ConsoleSessions.lifetime, now: now)
        #expect(try store.consoleSession(id: session.id, now: now.addingTimeInterval(60)) == session)
        #expect(try store.consoleSession(id: session.id, now: now.addingTimeInterval(ConsoleSessions.lifetime + 1)) == nil)
        #expect(session.id != session.csrf && session.id.count >= 40)
        // Only the id's hash is in the database: neither the cookie's value nor the CSRF token.
        let other = try store.openConsoleSession(tokenID: setup.adminID, lifetime: ConsoleSessions.lifetime, now: now)
        let files = [setup.backend.home.database.path, setup.backend.home.database.path + "-wal"]
        let dump = files.compactMap { FileManager.default.contents(atPath: $0) }.map { String(decoding: $0, as: UTF8.self) }.joined()
        #expect(dump.contains(Store.tokenHash(other.id)))
        #expect(!dump.contains(other.id) && !dump.contains(other.csrf))
        // Another store on the same file (gustd restarted) finds it; revoking the token ends it.
        #expect(try Store(home: setup.backend.home).consoleSession(id: other.id) == other)
        try store.revokeConsoleToken(id: setup.adminID)
        #expect(try store.consoleSession(id: other.id) == nil)
    }

    /// Signing in over and over with one token (a scoped one, leaked or scripted) ends that token's
    /// own oldest sessions, never another token's: it cannot sign the admin out by filling the table.
    @Test(.scratchDirectory) func aTokensSignInsEndItsOwnOldestSessionsNotAnothers() throws {
        let setup = try setup()
        let store = try Store(home: setup.backend.home)
        let now = Date()
        let admin = try store.openConsoleSession(tokenID: setup.adminID, lifetime: ConsoleSessions.lifetime, now: now)
        let scoped = try #require(try store.consoleTokens().first { $0.id != setup.adminID })
        var opened: [ConsoleSession] = []
        for second in 0..<(Store.consoleSessionsPerToken + 5) {
            opened.append(try store.openConsoleSession(tokenID: scoped.id, lifetime: ConsoleSessions.lifetime, now: now.addingTimeInterval(Double(second))))
        }
        #expect(try store.consoleSession(id: admin.id, now: now) == admin, "the admin is still signed in")
        for (index, session) in opened.enumerated() {
            let open = try store.consoleSession(id: session.id, now: now) != nil
            #expect(open == (index >= 5), "session \(index) of \(opened.count)")
        }
    }

    @Test(.scratchDirectory) func logEventsCarryNoMarkupEvenInsideTheirStrings() throws {
        let entry = LogEntry(release: 1, instance: "a1", stream: "stdout", function: "op <b>", line: "</script><img src=x onerror=alert(1)> & \u{2028}")
        let event = ConsoleLogStream.event(entry)
        #expect(!event.contains("<") && !event.contains(">") && !event.contains("&") && !event.contains("\n") && !event.contains("\u{2028}"))
        let decoded = try JSONSerialization.jsonObject(with: Data(event.utf8)) as? [String: Any]
        #expect((decoded?["text"] as? String)?.hasSuffix("</script><img src=x onerror=alert(1)> & \u{2028}") == true)
    }

    @Test(.scratchDirectory) func sparklinesSpanTheirBoxWithTheLargestValueAtTheTop() {
        #expect(Sparkline.points([0, 5, 10]) == "0,23 60,12 120,1")
        #expect(Sparkline.points([]) == "0,24.0 120.0,24.0" || Sparkline.points([]).hasPrefix("0,"))
    }
}
