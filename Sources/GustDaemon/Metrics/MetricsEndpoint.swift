import CoreMetrics
import GustCore
import HTTPTypes
import Hummingbird
import NIOCore
import Prometheus
import Synchronization

/// `GET /metrics` on gustd's metrics listener (`--metrics HOST:PORT`): the
/// registry in Prometheus' text format, with each served app's pool read just
/// before (queue depth, instances by state), so the gauges are as of the scrape.
struct MetricsEndpoint: HTTPResponder {
    typealias Context = BasicRequestContext

    let registry: PrometheusCollectorRegistry
    let supervisor: Supervisor
    /// Apps whose pool gauges the last scrape wrote: an app no longer served loses its series.
    private let reported = ReportedApps()

    init(registry: PrometheusCollectorRegistry, supervisor: Supervisor) {
        self.registry = registry
        self.supervisor = supervisor
    }

    func respond(to request: Request, context: Context) async throws -> Response {
        guard request.uri.path == "/metrics" else {
            return Gateway.error(404, "gustd's metrics listener serves GET /metrics only.")
        }
        guard request.method == .get || request.method == .head else {
            return Gateway.error(405, "Scrape /metrics with GET.", headers: [.allow: "GET"])
        }
        recordPools()
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
    }

    private func recordPools() {
        let routes = supervisor.routes.withLock { $0 }
        for (app, route) in routes {
            let snapshot = route.pool.snapshot
            CoreMetrics.Gauge(label: MetricCatalogue.queueDepth, dimensions: [("app", app.rawValue)]).record(snapshot.waiting)
            for (state, count) in Self.states(snapshot) {
                CoreMetrics.Gauge(label: MetricCatalogue.instances, dimensions: [("app", app.rawValue), ("state", state)]).record(count)
            }
        }
        for app in reported.replace(with: Set(routes.keys)) {
            CoreMetrics.Gauge(label: MetricCatalogue.queueDepth, dimensions: [("app", app.rawValue)]).destroy()
            for (state, _) in Self.states(PoolSnapshot(counts: (0, 0, 0, 0), waiting: 0)) {
                CoreMetrics.Gauge(label: MetricCatalogue.instances, dimensions: [("app", app.rawValue), ("state", state)]).destroy()
            }
        }
    }

    private static func states(_ snapshot: PoolSnapshot) -> [(String, Int)] {
        [("starting", snapshot.counts.starting), ("idle", snapshot.counts.idle), ("busy", snapshot.counts.busy), ("draining", snapshot.counts.draining)]
    }
}

/// The apps one scrape reported, to tell the next which ones went away.
private final class ReportedApps: Sendable {
    private let apps = Mutex<Set<AppName>>([])

    /// Stores `now` and returns the apps reported before and no longer.
    func replace(with now: Set<AppName>) -> Set<AppName> {
        apps.withLock { apps in
            defer { apps = now }
            return apps.subtracting(now)
        }
    }
}
