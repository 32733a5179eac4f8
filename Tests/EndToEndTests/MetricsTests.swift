import Foundation
import GustCore
import GustTesting
import Testing

/// `gustd --metrics`: a real gustd with a pushed app, scraped over loopback;
/// calls, a failing call, a schedule run, a record hook and builds move the
/// counters, `promtool check metrics` accepts the output, and a real
/// Prometheus scraping gustd finds the series.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct MetricsTests {
    static let app = """
        import gust

        @gust.op('hello')
        def hello(name='cat'):
            return f'hello {name}'

        @gust.op('boom')
        def boom():
            raise RuntimeError('boom')

        @gust.handler('cat/feed', methods=['GET'])
        def feed(request):
            return 'Meow! Thanks!\\n'

        @gust.every('1s')
        def tick():
            print('tick')

        @gust.before_save('cat')
        def validate(record, original):
            if not record.get('name'):
                raise gust.Error('Missing cat name', code=400)
            return record

        """

    static func metricsPort(_ home: GustHome) throws -> Int {
        let text = try String(contentsOf: home.run.appendingPathComponent("gustd.metrics"), encoding: .utf8)
        return try #require(Int(text.split(separator: ":").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""))
    }

    static func scrape(_ port: Int) throws -> PrometheusText {
        let response = try HTTPClient.request(port: port, "GET", "/metrics")
        #expect(response.status == 200)
        #expect(response.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true, "\(response.headers)")
        return PrometheusText(response.text)
    }

    @Test(.scratchDirectory) func callsSchedulesHooksAndBuildsMoveTheCountersAndPromtoolAcceptsThem() throws {
        let fixture = try PushFixture(gustdArguments: ["--metrics", "127.0.0.1:0"])
        let port = try Self.metricsPort(fixture.home)

        // A push that cannot build (no buildpack detects it): a failed build, counted.
        let broken = try fixture.workspace("broken")
        try broken.write("README", "nothing to run\n")
        try broken.commit("Nothing")
        #expect(try broken.push(to: fixture.remote).status != 0)
        #expect(try Self.scrape(port).value("gust_builds_total", ["app": "cats", "outcome": "failed"]) == 1)

        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app)
        try work.commit("Cats")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")

        #expect(try fixture.call("POST", "/_/functions/hello", body: "{}").status == 200)
        #expect(try fixture.call("POST", "/_/functions/hello", body: #"{"name": "Tom"}"#).status == 200)
        #expect(try fixture.call("POST", "/_/functions/boom", body: "{}").status == 500)
        #expect(try fixture.call("POST", "/_/functions/no-such-op", body: "{}").status == 404)
        #expect(try fixture.call("GET", "/cat/feed").status == 200)
        #expect(try fixture.call("GET", "/scanner/wp-login.php").status == 404)
        let token = try GustBinaries.gust(fixture.home, ["tokens", "create", "cats"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try fixture.call("POST", "/_/records/cat", body: #"{"name": "Tom"}"#, headers: ["X-Auth-Token": token]).status == 201)
        #expect(try fixture.call("POST", "/_/records/cat", body: "{}", headers: ["X-Auth-Token": token]).status == 400)
        #expect(ScheduleTests.wait(upTo: 20) {
            (try? Self.scrape(port).value("gust_schedule_runs_total", ["app": "cats", "schedule": "tick", "outcome": "ok"])) ?? 0 >= 1
        })

        let metrics = try Self.scrape(port)
        let op = ["app": "cats", "kind": "op"]
        #expect(metrics.value("gust_calls_total", op.merging(["function": "hello", "status": "2xx"]) { $1 }) == 2, "\(metrics.text)")
        #expect(metrics.value("gust_calls_total", op.merging(["function": "boom", "status": "5xx"]) { $1 }) == 1)
        #expect(metrics.value("gust_calls_total", op.merging(["function": "other", "status": "4xx"]) { $1 }) == 1)
        #expect(metrics.value("gust_calls_total", ["app": "cats", "kind": "handler", "function": "/cat/feed", "status": "2xx"]) == 1)
        #expect(metrics.value("gust_calls_total", ["app": "cats", "kind": "handler", "function": "other", "status": "4xx"]) == 1)
        #expect(metrics.value("gust_call_duration_seconds_count", op.merging(["function": "hello"]) { $1 }) == 2)
        #expect(metrics.has("gust_call_duration_seconds_bucket", op.merging(["function": "hello", "le": "+Inf"]) { $1 }))
        #expect(metrics.value("gust_calls_total", ["app": "cats", "kind": "schedule", "function": "tick", "status": "2xx"]) >= 1)
        #expect(metrics.value("gust_calls_total", ["app": "cats", "kind": "hook", "function": "before_save cat", "status": "2xx"]) == 1)
        #expect(metrics.value("gust_calls_total", ["app": "cats", "kind": "hook", "function": "before_save cat", "status": "4xx"]) == 1)
        #expect(metrics.value("gust_hook_failures_total", ["app": "cats", "hook": "before_save cat"]) == 1)
        #expect(metrics.value("gust_record_writes_total", ["app": "cats", "operation": "save", "outcome": "ok"]) == 1)
        #expect(metrics.value("gust_record_writes_total", ["app": "cats", "operation": "save", "outcome": "error"]) == 1)
        #expect(metrics.value("gust_builds_total", ["app": "cats", "outcome": "succeeded"]) == 1)
        #expect(metrics.value("gust_build_duration_seconds_count", ["outcome": "succeeded"]) == 1)
        #expect(metrics.value("gust_instance_starts_total", ["app": "cats", "outcome": "ok"]) >= 1)
        #expect(metrics.value("gust_instances", ["app": "cats"]) >= 1)
        #expect(metrics.has("gust_instances", ["app": "cats", "state": "idle"]))
        #expect(metrics.has("gust_queue_depth", ["app": "cats"]))
        // Bounded labels: no raw path of a request that matched nothing.
        #expect(!metrics.text.contains("wp-login"))
        #expect(!metrics.text.contains("no-such-op"))

        let check = try Command.run("promtool", ["check", "metrics"], input: metrics.text)
        #expect(check.status == 0, "promtool: \(check.output)\n\(metrics.text)")

        // Only /metrics, only there: the public port has no /metrics, the metrics port nothing else.
        #expect(try HTTPClient.request(port: port, "GET", "/").status == 404)
        #expect(try HTTPClient.request(port: fixture.port, "GET", "/metrics").status == 404)
    }

    @Test(.scratchDirectory) func aRealPrometheusScrapesGustd() throws {
        let fixture = try PushFixture(gustdArguments: ["--metrics", "127.0.0.1:0"])
        let port = try Self.metricsPort(fixture.home)
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app)
        try work.commit("Cats")
        #expect(try work.push(to: fixture.remote).status == 0)
        #expect(try fixture.call("POST", "/_/functions/hello", body: "{}").status == 200)

        let web = try LoopbackPort.free()
        let config = fixture.root.appendingPathComponent("prometheus.yml")
        try """
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: gustd
                static_configs:
                  - targets: ['127.0.0.1:\(port)']

            """.write(to: config, atomically: true, encoding: .utf8)
        let prometheus = try BackgroundCommand("/usr/bin/prometheus", [
            "--config.file=\(config.path)", "--storage.tsdb.path=\(fixture.root.appendingPathComponent("tsdb").path)",
            "--web.listen-address=127.0.0.1:\(web)",
        ], outputIn: fixture.root)
        defer { prometheus.stop() }

        let query = "/api/v1/query?query=gust_calls_total%7Bapp%3D%22cats%22%2Cfunction%3D%22hello%22%7D"
        var answer = ""
        let found = ScheduleTests.wait(upTo: 60) {
            answer = (try? HTTPClient.request(port: web, "GET", query, timeout: 5).text) ?? ""
            return answer.contains("\"function\":\"hello\"") && answer.contains("\"status\":\"2xx\"")
        }
        #expect(found, "Prometheus' answer: \(answer)\n\(prometheus.output.suffix(2000))")
        let targets = (try? HTTPClient.request(port: web, "GET", "/api/v1/targets", timeout: 5).text) ?? ""
        #expect(targets.contains("\"health\":\"up\""), "\(targets)")
    }
}
