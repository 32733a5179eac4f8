import Foundation
import GustCore
import HTTPTypes
import Logging
public import Hummingbird
import NIOCore

/// The web console (`gustd --console HOST:PORT`), on a listener of its own:
/// server-rendered pages behind a sign-in with a console token.
///
/// Every request but the sign-in page and the static files needs a session
/// cookie naming a live session whose token is still valid; every POST also
/// needs the session's CSRF token in its form. A scoped token's session sees
/// only its apps: any other app's pages are 404, as if it did not exist.
/// Every answer carries a Content Security Policy that allows no inline script.
public struct ConsoleServer: HTTPResponder {
    public typealias Context = ConsoleContext

    let backend: any ConsoleBackend
    let sessions: ConsoleSessions
    /// Whether this listener is itself HTTPS: its cookies are then always `Secure`.
    let secure: Bool
    /// Proxies (`gustd --trusted-proxy`) whose `X-Forwarded-Proto: https` makes the cookies `Secure`.
    let trustedProxies: Set<String>
    /// How often a log stream checks that its session and token still hold (`ConsoleLogStream`).
    let streamRecheck: Duration
    /// The log streams each token has open.
    let streams = ConsoleStreamSlots()

    public init(
        backend: any ConsoleBackend, sessions: ConsoleSessions = ConsoleSessions(), secure: Bool = false, trustedProxies: Set<String> = [],
        streamRecheck: Duration = ConsoleLogStream.recheck
    ) {
        self.backend = backend
        self.sessions = sessions
        self.secure = secure
        self.trustedProxies = trustedProxies
        self.streamRecheck = streamRecheck
    }

    /// Whether the browser reached the console over HTTPS: this listener's own TLS, or a trusted proxy's.
    func isSecure(_ request: Request, peer: String?) -> Bool {
        if secure { return true }
        guard let peer, trustedProxies.contains(peer) else { return false }
        return request.headers[HTTPField.Name("X-Forwarded-Proto")!]?.lowercased() == "https"
    }

    public static let sessionCookie = "gust_session"
    public static let loginCookie = "gust_login"
    /// Both cookies' names as they are set: over HTTPS with `__Host-`, which browsers accept only from
    /// the console's own host, `Secure` and with no `Domain`, so that an app at a sibling host
    /// (`cats.example.com` beside `console.example.com`) cannot set one for the console with
    /// `Domain=example.com`, from its answers or its pages' scripts (a session of its own scoped
    /// token for the admin's browser, or a junk one that keeps the admin signed out).
    public static let cookieNames = [sessionCookie, loginCookie].flatMap { [$0, "__Host-" + $0] }

    static func cookieName(_ base: String, https: Bool) -> String { https ? "__Host-" + base : base }

    static func cookies(of request: Request) -> Cookies { Cookies(request.headers[values: .cookie]) }
    /// The largest form the console reads (a record's JSON at most).
    static let maxFormBytes = RecordStore.maxRecordBytes + 64 * 1024
    /// The largest sign-in form: a console token and the login CSRF token, with room to spare.
    static let maxSignInBytes = 8 * 1024

    /// Who is asking, once signed in.
    struct Viewer: Sendable {
        var session: ConsoleSession
        var token: ConsoleToken
    }

    public func respond(to request: Request, context: Context) async throws -> Response {
        var response: Response
        do {
            response = try await route(request, https: isSecure(request, peer: context.peer))
        } catch let error as ConsoleError {
            response = error.response
        } catch let error as GustError {
            // A refusal the store or the supervisor explains (a bad config var name, an app not found …).
            response = ConsoleError((400...599).contains(error.code) ? error.code : 400, error.message).response
        } catch {
            context.logger.error("The console failed answering \(request.method) \(request.uri.path): \(error)")
            response = ConsoleError(500, "The console failed; gustd's log says why.").response
        }
        Self.secure(&response.headers)
        return response
    }

    /// The headers every answer gets: no inline script, no framing, no sniffing, no caching of pages.
    static func secure(_ headers: inout HTTPFields) {
        headers[HTTPField.Name("Content-Security-Policy")!] =
            "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        headers[HTTPField.Name("Referrer-Policy")!] = "same-origin"
        if headers[.cacheControl] == nil { headers[.cacheControl] = "no-store" }
    }

    private func route(_ request: Request, https: Bool) async throws -> Response {
        let path = request.uri.path
        switch (request.method, path) {
        case (.get, "/static/console.css"):
            return Self.asset(ConsoleAssets.css, type: "text/css; charset=utf-8")
        case (.get, "/static/console.js"):
            return Self.asset(ConsoleAssets.javascript, type: "text/javascript; charset=utf-8")
        case (.get, "/favicon.ico"):
            return Response(status: .noContent)
        case (.get, "/login"):
            return loginPage(error: nil, https: https, reusing: Self.cookies(of: request)[Self.cookieName(Self.loginCookie, https: https)])
        case (.post, "/login"):
            return try await signIn(request, https: https)
        default:
            break
        }
        guard let viewer = try await viewer(of: request, https: https) else {
            if request.method == .get { return Self.redirect("/login") }
            throw ConsoleError(403, "Sign in first.")
        }
        var form = FormBody("")
        if request.method == .post {
            form = try await Self.form(request)
            guard let sent = form["csrf"], Store.constantTimeEqual(sent, viewer.session.csrf) else {
                throw ConsoleError(403, "This form has no valid CSRF token: reload the page and try again.")
            }
        }
        let parts = path.split(separator: "/").map { $0.removingPercentEncoding ?? String($0) }
        let query = FormBody(request.uri.query ?? "")
        switch (request.method, parts.first) {
        case (.get, nil):
            return try await overview(viewer)
        case (.get, "activity") where parts.count == 1:
            return try await activityPage(viewer)
        case (.get, "domains") where parts.count == 1:
            return try await domainsPage(viewer)
        case (.post, "domains") where parts.count == 1:
            return try await addDomain(form, viewer)
        case (.post, "domains") where parts.count == 2 && parts[1] == "remove":
            return try await removeDomain(form, viewer)
        case (.post, "logout") where parts.count == 1:
            try await backend.withStore { [id = viewer.session.id] in try $0.closeConsoleSession(id: id) }
            sessions.forget(viewer.session.id)
            var response = Self.redirect("/login")
            response.headers[.setCookie] = cookie(Self.cookieName(Self.sessionCookie, https: https), "", maxAge: 0, https: https)
            return response
        case (_, "apps") where parts.count >= 2:
            // Another app than the token's is not found, whether listed or typed.
            guard let app = try? AppName(parts[1]), viewer.token.mayUse(app), try await backend.withStore({ try $0.app(app) != nil }) else {
                throw ConsoleError(404, "No such app.")
            }
            return try await appRoute(request.method, Array(parts.dropFirst(2)), app: app, viewer: viewer, form: form, query: query, request: request)
        default:
            throw ConsoleError(404, "No such page.")
        }
    }

    private func appRoute(
        _ method: HTTPRequest.Method, _ rest: [String], app: AppName, viewer: Viewer, form: FormBody, query: FormBody, request: Request
    ) async throws -> Response {
        switch (method, rest.first, rest.count) {
        case (.get, nil, _):
            return try await appPage(app, viewer)
        case (.get, "releases", 2):
            guard let version = Int(rest[1]) else { throw ConsoleError(404, "No such release.") }
            return try await releasePage(app, version: version, viewer)
        case (.post, "rollback", 1):
            return try await rollback(app, form, viewer)
        case (.post, "config", 1):
            return try await setConfig(app, form, viewer)
        case (.post, "config", 2) where rest[1] == "unset":
            return try await unsetConfig(app, form, viewer)
        case (.get, "logs", 1):
            return try await logsPage(app, query, viewer)
        case (.get, "logs", 2) where rest[1] == "stream":
            // A stream outlives the request that was checked: it ends once the session is closed,
            // its token revoked or expired, or the token no longer reaches the app.
            let still: @Sendable () async -> Bool = { [backend, id = viewer.session.id] in
                (try? await backend.withStore { store in
                    guard let session = try store.consoleSession(id: id), let token = try store.consoleToken(id: session.tokenID) else { return false }
                    return token.isValid() && token.mayUse(app)
                }) ?? false
            }
            guard let slot = streams.take(token: viewer.token.id) else {
                throw ConsoleError(429, "This token has \(streams.limit) log streams open already: close a console tab, or wait for one to end.")
            }
            return ConsoleLogStream.response(
                app: app, function: query["function"], home: backend.home, recheck: streamRecheck, stillAllowed: still, holding: slot
            )
        case (.post, "call", 1):
            let wantsJSON = request.headers[.accept]?.contains("application/json") ?? false
            return try await call(app, form, viewer, json: wantsJSON)
        case (.post, "scale", 1):
            return try await changeScale(app, form, viewer)
        case (.post, "limits", 1):
            return try await changeLimits(app, form, viewer)
        case (.post, "tokens", 1):
            return try await createToken(app, form, viewer)
        case (.post, "tokens", 3) where rest[2] == "revoke":
            return try await revokeToken(app, id: rest[1], viewer)
        case (.get, "records", 1):
            return try await recordsPage(app, query, viewer)
        case (.get, "records", 3):
            return try await recordPage(app, type: rest[1], id: rest[2], viewer, error: nil, fields: nil)
        case (.post, "records", 3):
            return try await saveRecord(app, type: rest[1], id: rest[2], form, viewer)
        case (.post, "records", 4) where rest[3] == "delete":
            return try await deleteRecord(app, type: rest[1], id: rest[2], viewer)
        default:
            throw ConsoleError(404, "No such page.")
        }
    }

    // MARK: Signing in

    private func loginPage(error: String?, status: HTTPResponse.Status = .ok, https: Bool, reusing existing: String? = nil) -> Response {
        // Double-submit: the form's value must match this cookie, so another site cannot sign a browser in.
        // A browser's existing value is kept, so two sign-in pages open at once (or a redirected
        // favicon fetch) do not invalidate each other's forms.
        let loginCSRF = existing.flatMap { $0.count >= 32 && $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" } ? $0 : nil }
            ?? Store.randomURLSafe(bytes: 24)
        var values: [String: Any] = ["loginCSRF": loginCSRF]
        values["error"] = error
        var response = html(ConsoleTemplates.render("login", values), status: status)
        response.headers[.setCookie] = cookie(Self.cookieName(Self.loginCookie, https: https), loginCSRF, maxAge: 3600, https: https)
        return response
    }

    private func signIn(_ request: Request, https: Bool) async throws -> Response {
        // Anyone may post here: nothing is read without the login cookie, and then only a sign-in's worth.
        let expected = Self.cookies(of: request)[Self.cookieName(Self.loginCookie, https: https)] ?? ""
        guard !expected.isEmpty else {
            return loginPage(error: "The sign-in form expired; try again.", status: .forbidden, https: https)
        }
        let form = try await Self.form(request, upTo: Self.maxSignInBytes)
        guard let sent = form["csrf"], Store.constantTimeEqual(sent, expected) else {
            return loginPage(error: "The sign-in form expired; try again.", status: .forbidden, https: https)
        }
        let secret = (form["token"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard !secret.isEmpty, let token = try await backend.withStore({ try $0.verifyConsoleToken(secret: secret) }) else {
            return loginPage(error: "That is not a valid console token.", status: .unauthorized, https: https)
        }
        let session = try await backend.withStore { try $0.openConsoleSession(tokenID: token.id, lifetime: ConsoleSessions.lifetime) }
        var response = Self.redirect("/")
        response.headers[.setCookie] = cookie(Self.cookieName(Self.loginCookie, https: https), "", maxAge: 0, https: https)
        response.headers.append(HTTPField(
            name: .setCookie, value: cookie(Self.cookieName(Self.sessionCookie, https: https), session.id, maxAge: Int(ConsoleSessions.lifetime), https: https)
        ))
        return response
    }

    /// The session the request's cookie names, with its token, if both are still good. A name sent
    /// twice names none (`Cookies`).
    private func viewer(of request: Request, https: Bool) async throws -> Viewer? {
        guard let id = Self.cookies(of: request)[Self.cookieName(Self.sessionCookie, https: https)], !id.isEmpty, id.count <= 128 else { return nil }
        // One trip to the store: the session by its id's hash, then its token, still valid.
        return try await backend.withStore { store -> Viewer? in
            guard let session = try store.consoleSession(id: id) else { return nil }
            guard let token = try store.consoleToken(id: session.tokenID), token.isValid() else {
                try store.closeConsoleSessions(tokenID: session.tokenID)
                return nil
            }
            return Viewer(session: session, token: token)
        }
    }

    func cookie(_ name: String, _ value: String, maxAge: Int, https: Bool) -> String {
        "\(name)=\(value); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Strict" + (https ? "; Secure" : "")
    }

    // MARK: Answers

    /// The values every page's layout uses.
    func base(_ viewer: Viewer) -> [String: Any] {
        var values: [String: Any] = ["signedIn": true, "csrf": viewer.session.csrf, "scope": viewer.token.isAdmin ? "admin" : "apps: \(viewer.token.scope)"]
        if let flash = sessions.takeFlash(viewer.session.id) { values[flash.isError ? "flashError" : "flash"] = flash.text }
        return values
    }

    func html(_ body: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func redirect(_ location: String) -> Response {
        var headers = HTTPFields()
        headers[.location] = location
        return Response(status: .seeOther, headers: headers)
    }

    static func asset(_ text: String, type: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.cacheControl] = "max-age=300"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func form(_ request: Request, upTo limit: Int = maxFormBytes) async throws -> FormBody {
        do {
            let body = try await request.body.collect(upTo: limit)
            return FormBody(String(decoding: body.readableBytesView, as: UTF8.self))
        } catch is NIOTooManyBytesError {
            throw ConsoleError(413, "The form is too large.")
        }
    }
}

/// A page that answers with an error: its status and a message page (escaped like everything else).
struct ConsoleError: Error {
    var status: Int
    var message: String

    init(_ status: Int, _ message: String) {
        self.status = status
        self.message = message
    }

    var response: Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        let page = ConsoleTemplates.render("message", [
            "heading": status == 404 ? "Not found" : "Refused", "text": message, "kind": "error", "back": "/",
        ])
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: page)))
    }
}
