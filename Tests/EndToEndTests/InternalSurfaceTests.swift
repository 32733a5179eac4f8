import Foundation
import GustCore
import GustTesting
import Testing

/// The runtime's internal surface (`/_gust/...`: manifest, ops, schedules,
/// hooks) is gustd's alone: no spelling of its path gets through gustd, and
/// the instance's own socket answers it only with the secret gustd holds.
@Suite(.timeLimit(.minutes(20)))
struct InternalSurfaceTests {
    /// An app whose schedule, hook and op print what they were called with (read back from its log).
    static func app(_ work: GitWorkspace) throws {
        try work.write("__init__.py", """
            import json
            import os

            import gust

            def mark(what, value):
                print('gust-test: ' + json.dumps({'what': what, 'value': value}), flush=True)

            @gust.every('1h')
            def purge(**params):
                mark('schedule', params)

            @gust.before_save('cat')
            def check_cat(record, original):
                mark('hook', record)
                return record

            @gust.op('echo')
            def echo(**arguments):
                mark('op', arguments)
                return arguments

            @gust.handler('inside')
            def inside(request):
                return {'headers': sorted(k.lower() for k in request.headers),
                        'token_in_environment': 'GUST_INTERNAL_TOKEN' in os.environ}

            """)
    }

    /// Every way we know to spell `/_gust` (or `/_/` beyond the public three).
    static let spellings = [
        "/_gust/", "/%5Fgust/", "/%5fgust/", "/%5F%5Fgust/../_gust/", "//_gust/", "/./_gust/", "/x/../_gust/",
        "/x/%2e%2e/_gust/", "/x/%2E%2E/_gust/", "/%2e/_gust/", "/%255fgust/", "/%255Fgust/", "/%25255fgust/",
        "/x/%252e%252e/_gust/", "/_GUST/", "/_Gust/", "/%5FGUST/", "/%5c_gust/", "/_gust%2f", "/%5Fgust%2F",
    ]

    /// What each internal endpoint would do if reached, and its method.
    static let endpoints: [(method: String, path: String, body: String?)] = [
        ("GET", "manifest", nil),
        ("GET", "health", nil),
        ("POST", "schedules/purge", #"{"evil": "schedule"}"#),
        ("POST", "hooks/before_save/cat", #"{"record": {"evil": "hook"}}"#),
        ("POST", "ops/echo", #"{"evil": "op"}"#),
    ]

    @Test(.scratchDirectory) func noSpellingOfTheInternalPathGetsThroughGustd() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try Self.app(work)
        try work.commit("Cats")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")

        var sent = 0
        for spelling in Self.spellings {
            for endpoint in Self.endpoints {
                let path = spelling + endpoint.path
                for byHost in [false, true] {
                    let answer = byHost
                        ? try HTTPClient.request(port: fixture.port, endpoint.method, path, host: "cats.localhost:\(fixture.port)", body: endpoint.body)
                        : try fixture.call(endpoint.method, path, body: endpoint.body)
                    sent += 1
                    let how = "\(endpoint.method) \(byHost ? "" : "/apps/cats")\(path)"
                    #expect(answer.status == 404, "\(how) answered \(answer.status): \(answer.text)")
                    #expect(answer.json?["code"] as? Int == 404, "\(how): \(answer.text)")
                    #expect(!answer.text.contains("protocol") && !answer.text.contains("evil") && !answer.text.contains("\"ok\""), "\(how): \(answer.text)")
                }
            }
        }
        // `/_/` is gustd's: only functions, records and health are public.
        for path in ["/_/schedules/purge", "/_/hooks/before_save/cat", "/_/manifest", "/%5f/manifest", "/_/functions/%2e%2e/%2e%2e/_gust/manifest"] {
            let answer = try fixture.call("POST", path, body: #"{"evil": "underscore"}"#)
            #expect(answer.status == 404, "\(path): \(answer.text)")
            #expect(!answer.text.contains("protocol") && !answer.text.contains("evil"), "\(path): \(answer.text)")
        }
        #expect(sent == Self.spellings.count * Self.endpoints.count * 2)
        // Request targets no browser sends: without the leading slash, and in absolute form.
        for target in ["_gust/manifest", "%5fgust/manifest", "http://cats.localhost/_gust/manifest", "http://cats.localhost/%5fgust/manifest"] {
            let raw = try HTTPClient.raw(port: fixture.port, Data("GET \(target) HTTP/1.1\r\nHost: cats.localhost\r\nConnection: close\r\n\r\n".utf8))
            let answer = try? HTTPClient.parse(raw)
            #expect(answer.map { (400..<500).contains($0.status) } == true, "\(target): \(answer?.text ?? "no answer")")
            #expect(answer?.text.contains("protocol") != true, "\(target): \(answer?.text ?? "")")
        }

        // The public surface still works, and a client cannot pose as gustd with its headers.
        let echo = try fixture.call("POST", "/_/functions/echo", body: #"{"fine": 1}"#, headers: ["X-Gust-Internal": "guess", "X-Gust-Hook-Context": "x"])
        #expect(echo.status == 200, "\(echo.text)")
        let inside = try fixture.call("GET", "/inside", headers: ["X-Gust-Internal": "guess", "X-Gust-Other": "1"])
        #expect(inside.status == 200, "\(inside.text)")
        let seen = inside.json?["headers"] as? [String] ?? []
        #expect(!seen.contains { $0.hasPrefix("x-gust-") }, "the handler saw \(seen)")
        #expect(inside.json?["token_in_environment"] as? Bool == false)

        let written = AppLogMarks.wait(fixture.home, app: "cats", prefix: "gust-test: ") { $0.joined().contains("\"fine\": 1") }.joined()
        #expect(!written.contains("evil"), "an internal endpoint ran: \(written)")
        #expect(written.contains("\"fine\": 1"), "the public op ran: \(written)")
    }

    @Test(.scratchDirectory) func theInstanceSocketAnswersItsInternalSurfaceOnlyToGustd() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try Self.app(work)
        try work.commit("Cats")
        #expect(try work.push(to: fixture.remote).status == 0)
        #expect(try fixture.call("GET", "/inside").status == 200)

        let instances = fixture.home.run.appendingPathComponent("instances")
        // An instance's record with its socket: ID.sock, or sandboxed ID/instance.sock, or for a fork of a
        // sandboxed zygote ZYGOTE/ID/instance.sock (a zygote's record has none: it serves no calls).
        let entries = try FileManager.default.contentsOfDirectory(atPath: instances.path)
        let sockets = entries.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.flatMap { id in
            (["\(id).sock", "\(id)/instance.sock"] + entries.filter { !$0.contains(".") }.map { "\($0)/\(id)/instance.sock" })
                .map { instances.appendingPathComponent($0).path }
        }
        let socket = try #require(sockets.first { FileManager.default.fileExists(atPath: $0) }, "\(entries)")

        // The socket is the instance's: a handler answers there.
        #expect(try HTTPClient.request(unixSocket: socket, "GET", "/inside").status == 200)
        for headers in [[:], ["X-Gust-Internal": ""], ["X-Gust-Internal": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"]] {
            for endpoint in Self.endpoints {
                for spelling in ["/_gust/", "/%5fgust/", "//_gust/"] {
                    let answer = try HTTPClient.request(unixSocket: socket, endpoint.method, spelling + endpoint.path, headers: headers, body: endpoint.body)
                    let how = "\(endpoint.method) \(spelling)\(endpoint.path) with \(headers)"
                    #expect(answer.status == 404, "\(how) answered \(answer.status): \(answer.text)")
                    #expect(answer.json?["code"] as? Int == 404, "\(how): \(answer.text)")
                    #expect(!answer.text.contains("protocol") && !answer.text.contains("evil"), "\(how): \(answer.text)")
                }
            }
        }
        let written = AppLogMarks.settled(fixture.home, app: "cats", prefix: "gust-test: ").joined()
        #expect(!written.contains("evil"), "an internal endpoint ran: \(written)")
        // gustd's own calls carry the secret: a record write runs the hook.
        let token = try GustBinaries.gust(fixture.home, ["tokens", "create", "cats"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let saved = try fixture.call("POST", "/_/records/cat", body: #"{"name": "Tom"}"#, headers: ["X-Auth-Token": token])
        #expect(saved.status == 201, "\(saved.text)")
        #expect(AppLogMarks.wait(fixture.home, app: "cats", prefix: "gust-test: ") { $0.joined().contains("\"hook\"") }.joined().contains("\"hook\""))
    }
}
