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

/// Steering from the console in-process (a real store, the fake backend of
/// `ConsoleServerTests`): scale, limits, app tokens and domains go through the
/// store's checked paths with the CLI's messages, tell gustd, note who did it,
/// refuse a form without the CSRF token, and keep a scoped token to its apps
/// and under the admin's ceilings. Also: the charts, and sessions that outlive
/// the console that opened them.
@Suite struct ConsoleSteeringTests {
    let base = ConsoleServerTests()
    let cats = try! AppName("cats")

    /// POSTs a form with the session's cookie; returns the status, the redirect and the page.
    func post(_ client: some TestClientProtocol, _ uri: String, _ body: String, cookie: String) async throws -> (HTTPResponse.Status, String?, String) {
        var headers = ConsoleServerTests.form
        headers[.cookie] = cookie
        return try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: body)) {
            ($0.status, $0.headers[.location], String(buffer: $0.body))
        }
    }

    func page(_ client: some TestClientProtocol, _ uri: String, cookie: String) async throws -> String {
        try await client.execute(uri: uri, method: .get, headers: [.cookie: cookie]) { String(buffer: $0.body) }
    }

    @Test(.scratchDirectory) func scaleAndLimitsChangeThroughTheCLIsChecksAndGustdIsTold() async throws {
        let setup = try base.setup()
        try await base.application(setup.backend).test(.router) { client in
            let (cookie, csrf) = try await base.signIn(client, setup.admin)
            let (status, location, _) = try await post(client, "/apps/cats/scale", "csrf=\(csrf)&min=0&max=3&concurrency=7&idle=2m", cookie: cookie)
            #expect(status == .seeOther && location?.hasPrefix("/apps/cats") == true)
            #expect(try await setup.backend.withStore { try $0.scale(cats) } == ScaleSettings(min: 0, max: 3, concurrency: 7, idleSeconds: 120))
            #expect(setup.backend.reconciled.load(ordering: .relaxed) == 1)
            #expect(try await page(client, "/apps/cats", cookie: cookie).contains("Scale of cats: min 0, max 3, concurrency 7, idle 2m."))

            // The CLI's own message, the rules unchanged, gustd not bothered.
            _ = try await post(client, "/apps/cats/scale", "csrf=\(csrf)&max=99", cookie: cookie)
            let refused = try await page(client, "/apps/cats", cookie: cookie)
            #expect(refused.contains("id=\"flash-error\"") && refused.contains("--max must be between 1 and 32."), "\(refused)")
            _ = try await post(client, "/apps/cats/scale", "csrf=\(csrf)&idle=soon", cookie: cookie)
            #expect(try await page(client, "/apps/cats", cookie: cookie).contains("is not a duration: write 30s, 5m, 1h or 1h30m."))
            #expect(try await setup.backend.withStore { try $0.scale(cats) }.max == 3)
            #expect(setup.backend.reconciled.load(ordering: .relaxed) == 1)

            _ = try await post(client, "/apps/cats/limits", "csrf=\(csrf)&memory=128M&cpu=0.5&pids=default&tmp=default&disk=default", cookie: cookie)
            #expect(try await setup.backend.withStore { try $0.limits(cats) } == AppLimits(memory: 128 << 20, cpuMillis: 500))
            _ = try await post(client, "/apps/cats/limits", "csrf=\(csrf)&memory=lots", cookie: cookie)
            #expect(try await page(client, "/apps/cats", cookie: cookie).contains("is not a size: write 64M, 256M, 1G (or none)."))
            #expect(try await setup.backend.withStore { try $0.limits(cats) }.memory == 128 << 20)

            let activity = try await setup.backend.withStore { try $0.activity(app: cats) }
            #expect(activity.map(\.action) == ["limits", "scale"], "\(activity)")
            #expect(activity.allSatisfy { $0.source == "console" && $0.actor.hasPrefix("console token \(setup.adminID)") })
        }
    }

    @Test(.scratchDirectory) func aScopedTokenStaysUnderTheCeilingsAndCannotSteerAnotherApp() async throws {
        let setup = try base.setup()
        try await setup.backend.withStore { try $0.setLimitCeilings(LimitCeilings(limits: AppLimits(memory: 256 << 20), maxInstances: 2)) }
        try await base.application(setup.backend).test(.router) { client in
            let (cookie, csrf) = try await base.signIn(client, setup.scoped)
            _ = try await post(client, "/apps/cats/scale", "csrf=\(csrf)&max=3", cookie: cookie)
            #expect(try await page(client, "/apps/cats", cookie: cookie).contains("is over the ceiling of 2 instances an admin set"))
            _ = try await post(client, "/apps/cats/limits", "csrf=\(csrf)&memory=1G", cookie: cookie)
            #expect(try await page(client, "/apps/cats", cookie: cookie).contains("Over the ceilings an admin set for scoped keys: --memory 1G (ceiling 256M)"))
            #expect(try await setup.backend.withStore { try $0.scale(cats) } == .standard)
            #expect(try await setup.backend.withStore { try $0.limits(cats) } == AppLimits())
            // Under the ceiling: the min alone, without restating a max.
            _ = try await post(client, "/apps/cats/scale", "csrf=\(csrf)&min=2&max=4", cookie: cookie)
            #expect(try await setup.backend.withStore { try $0.scale(cats) }.min == 2)

            for (uri, body) in [("/apps/dogs/scale", "max=1"), ("/apps/dogs/limits", "memory=64M"), ("/apps/dogs/tokens", "description=x"),
                                ("/apps/dogs/tokens/1/revoke", ""), ("/domains", "app=dogs&domain=dogs.example.org"),
                                ("/domains/remove", "app=dogs&domain=dogs.example.org")] {
                let (status, _, _) = try await post(client, uri, "csrf=\(csrf)&\(body)", cookie: cookie)
                #expect(status == .notFound, "\(uri)")
            }
            let dogs = try AppName("dogs")
            #expect(try await setup.backend.withStore { try $0.scale(dogs) } == ScaleSettings.standard)
            #expect(try await setup.backend.withStore { try $0.tokens(dogs).isEmpty && $0.domains(of: dogs).isEmpty })
        }
    }

    @Test(.scratchDirectory) func aNewTokensSecretIsShownOnceAndRevokingItStopsIt() async throws {
        let setup = try base.setup()
        try await base.application(setup.backend).test(.router) { client in
            let (cookie, csrf) = try await base.signIn(client, setup.admin)
            let hostile = "<script>alert(1)</script>".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let (status, _, shown) = try await post(client, "/apps/cats/tokens", "csrf=\(csrf)&description=\(hostile)&expires=30d", cookie: cookie)
            #expect(status == .created)
            let secret = String(try #require(shown.firstMatch(of: /id="token-secret">(gust_[A-Za-z0-9_-]+)</)?.1))
            let app = cats
            let works = try await setup.backend.withStore { try $0.verifyToken(app, secret: secret) }
            #expect(works)
            let appPage = try await page(client, "/apps/cats", cookie: cookie)
            #expect(!appPage.contains("<script>alert") && appPage.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
            #expect(!appPage.contains(secret), "the secret is shown once, not on the app page")
            let id = try #require(try await setup.backend.withStore { try $0.tokens(cats) }.first?.id)

            _ = try await post(client, "/apps/cats/tokens", "csrf=\(csrf)&expires=whenever", cookie: cookie)
            #expect(try await page(client, "/apps/cats", cookie: cookie).contains("is not a duration; write it like 90d, 12h or 30m."))

            let (revoked, _, _) = try await post(client, "/apps/cats/tokens/\(id)/revoke", "csrf=\(csrf)", cookie: cookie)
            #expect(revoked == .seeOther)
            let stillWorks = try await setup.backend.withStore { try $0.verifyToken(app, secret: secret) }
            #expect(!stillWorks)
            _ = try await post(client, "/apps/cats/tokens/\(id)/revoke", "csrf=\(csrf)", cookie: cookie)
            #expect(try await page(client, "/apps/cats", cookie: cookie).contains("cats has no active token \(id)."))
            let activity = try await setup.backend.withStore { try $0.activity(app: cats) }.map(\.action)
            #expect(activity == ["token revoke", "token create"])
        }
    }

    @Test(.scratchDirectory) func domainsAreAddedAndRemovedWithTheStoresChecksAndGustdIsTold() async throws {
        let setup = try base.setup()
        try await setup.backend.withStore { try $0.setDaemonDomain("gust.test") }
        try await base.application(setup.backend).test(.router) { client in
            let (cookie, csrf) = try await base.signIn(client, setup.admin)
            _ = try await post(client, "/domains", "csrf=\(csrf)&app=cats&domain=www.cats.example", cookie: cookie)
            #expect(try await setup.backend.withStore { try $0.domainOwner(try DomainName("www.cats.example")) } == cats)
            #expect(setup.backend.domainRefreshes.load(ordering: .relaxed) == 1)
            let listed = try await page(client, "/domains", cookie: cookie)
            #expect(listed.contains("data-domain=\"www.cats.example\"") && listed.contains("pending"))
            // Another app's APP.DOMAIN, and a name taken: the store's refusals, in its words.
            _ = try await post(client, "/domains", "csrf=\(csrf)&app=cats&domain=dogs.gust.test", cookie: cookie)
            #expect(try await page(client, "/domains", cookie: cookie).contains("the address of the app dogs"))
            _ = try await post(client, "/domains", "csrf=\(csrf)&app=dogs&domain=www.cats.example", cookie: cookie)
            #expect(try await page(client, "/domains", cookie: cookie).contains("www.cats.example is taken by another app."))
            _ = try await post(client, "/domains", "csrf=\(csrf)&app=cats&domain=%3Cscript%3E", cookie: cookie)
            let bad = try await page(client, "/domains", cookie: cookie)
            #expect(bad.contains("id=\"flash-error\"") && !bad.contains("<script>"))
            #expect(setup.backend.domainRefreshes.load(ordering: .relaxed) == 1)

            _ = try await post(client, "/domains/remove", "csrf=\(csrf)&app=cats&domain=www.cats.example", cookie: cookie)
            #expect(try await setup.backend.withStore { try $0.domains() }.isEmpty)
            #expect(setup.backend.domainRefreshes.load(ordering: .relaxed) == 2)
            #expect(try await setup.backend.withStore { try $0.activity(app: cats) }.map(\.action) == ["domain remove", "domain add"])
        }
    }

    @Test(.scratchDirectory) func everyNewFormIsRefusedWithoutTheSessionsCSRFToken() async throws {
        let setup = try base.setup()
        try await base.application(setup.backend).test(.router) { client in
            let (cookie, _) = try await base.signIn(client, setup.admin)
            for (uri, body) in [("/apps/cats/scale", "max=2"), ("/apps/cats/limits", "memory=64M"), ("/apps/cats/tokens", "description=x"),
                                ("/apps/cats/tokens/1/revoke", ""), ("/domains", "app=cats&domain=www.cats.example"),
                                ("/domains/remove", "app=cats&domain=www.cats.example")] {
                for csrf in ["", "&csrf=forged"] {
                    let (status, _, _) = try await post(client, uri, body + csrf, cookie: cookie)
                    #expect(status == .forbidden, "\(uri)\(csrf)")
                }
            }
            #expect(try await setup.backend.withStore { try $0.scale(cats) } == ScaleSettings.standard)
            #expect(try await setup.backend.withStore { try $0.limits(cats) } == AppLimits())
            #expect(try await setup.backend.withStore { try $0.tokens(cats).isEmpty && $0.domains().isEmpty })
            #expect(setup.backend.reconciled.load(ordering: .relaxed) == 0)
        }
    }

    @Test(.scratchDirectory) func theAppPageDrawsItsChartsAsSVGWithTitlesAndNoScript() async throws {
        let setup = try base.setup()
        _ = try await setup.backend.withStore { store in
            try store.recordRelease(try AppName("cats"), NewRelease(status: .built, buildSeconds: 12.5, description: "Push"))
        }
        try await base.application(setup.backend).test(.router) { client in
            let (cookie, _) = try await base.signIn(client, setup.admin)
            let app = try await page(client, "/apps/cats", cookie: cookie)
            for id in ["latency", "instances", "builds"] {
                #expect(app.contains("id=\"chart-\(id)\"") && app.contains("<title id=\"chart-\(id)-title\">"), "\(id)")
            }
            #expect(app.contains("<path class=\"series p95\" d=\"M"))
            #expect(app.contains("p99 87 ms"), "the description says the last minute's numbers in words")
            #expect(app.contains("<rect class=\"bar\"") && app.contains("v1: 12.5 s"))
        }
    }

    @Test(.scratchDirectory) func theAppPageHasAChartPerFunctionWithItsNameEscaped() async throws {
        let setup = try base.setup()
        try await base.application(setup.backend).test(.router) { client in
            let (cookie, _) = try await base.signIn(client, setup.admin)
            let app = try await page(client, "/apps/cats", cookie: cookie)
            #expect(app.contains("id=\"function-charts\""))
            // Busiest first: the hostile op had more calls than charge; ids are by position, not name.
            for id in ["fn0-calls", "fn0-latency", "fn1-calls", "fn1-latency"] {
                #expect(app.contains("id=\"chart-\(id)\"") && app.contains("<title id=\"chart-\(id)-title\">"), "\(id)")
            }
            #expect(app.contains("data-function=\"charge\""))
            #expect(app.contains("<path class=\"series errors\" d=\"M"))
            #expect(app.contains("Calls and errors per minute: op charge"))
            #expect(app.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
            #expect(!app.contains("<script>alert(1)"))
        }
    }

    @Test(.scratchDirectory) func chartsLeaveGapsWhereThereIsNoValueAndScaleToTheTop() {
        let chart = ConsoleChart.lines(
            id: "x", title: "t", description: "d", series: [.init(name: "a", style: "a", values: [1, 2, nil, 4, nil])],
            unit: ConsoleChart.count
        )
        let path = ((chart["series"] as? [[String: Any]])?.first?["path"] as? String) ?? ""
        #expect(path == "M0,59.5L75,40M225,1h8", "\(path)")
        let last = ConsoleChart.lines(id: "x", title: "t", description: "d", series: [.init(name: "a", style: "a", values: [nil, 3])], unit: ConsoleChart.count)
        #expect(((last["series"] as? [[String: Any]])?.first?["path"] as? String) == "M300,1h-8", "a lone point at the right edge stays in the box")
        #expect(chart["top"] as? String == "4")
        let empty = ConsoleChart.lines(id: "x", title: "t", description: "d", series: [.init(name: "a", style: "a", values: [nil, nil])], unit: ConsoleChart.count)
        #expect(empty["hasData"] as? Bool == false)
        let bars = ConsoleChart.bars(id: "b", title: "t", description: "d", bars: [("v1", 10), ("v2", 5)], unit: ConsoleChart.seconds)
        let drawn = (bars["bars"] as? [[String: Any]]) ?? []
        #expect(drawn.map { $0["label"] as? String } == ["v1: 10.0 s", "v2: 5.0 s"])
        #expect(drawn.map { $0["height"] as? String } == ["78", "39"])
    }

    @Test(.scratchDirectory) func aSessionOutlivesTheConsoleThatOpenedIt() async throws {
        let setup = try base.setup()
        let cookie = try await base.application(setup.backend).test(.router) { client in
            try await base.signIn(client, setup.admin).cookie
        }
        // A new console on the same store: gustd restarted.
        try await base.application(setup.backend).test(.router) { client in
            try await client.execute(uri: "/", method: .get, headers: [.cookie: cookie]) { #expect($0.status == .ok) }
            try await client.execute(uri: "/", method: .get, headers: [.cookie: cookie + "x"]) { #expect($0.status == .seeOther) }
        }
    }
}
