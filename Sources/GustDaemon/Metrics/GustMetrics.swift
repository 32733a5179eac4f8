import CoreMetrics
import GustCore
import Prometheus
import Synchronization

/// What gustd counts, through swift-metrics: each event site makes one call
/// here. Off unless `gustd --metrics` bootstrapped a backend; then the calls
/// cost a registry look-up each, and nothing at all while off.
enum GustMetrics {
    private static let enabled = Atomic(false)
    /// The registry `/metrics` renders, made once per process.
    private static let registry = Mutex<PrometheusCollectorRegistry?>(nil)

    static var isEnabled: Bool { enabled.load(ordering: .relaxed) }

    /// Makes swift-metrics record into a Prometheus registry: once per process
    /// (swift-metrics allows one bootstrap), at gustd's start.
    static func bootstrap() -> PrometheusCollectorRegistry {
        registry.withLock { registry in
            if let registry { return registry }
            let made = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusBackend(registry: made))
            registry = made
            enabled.store(true, ordering: .relaxed)
            return made
        }
    }

    // MARK: Calls

    /// A call's series, by its labels (bounded, so the cache is too).
    private struct CallSeries: Hashable {
        var app: AppName
        var kind: CallKind
        var function: String
        var status: String
    }

    /// The handles of every call series seen, so that a call costs one look-up
    /// rather than new handles and the registry's hashing of their labels; and the function names
    /// each app has used (a bounded number).
    private struct CallCache {
        var handles: [CallSeries: (calls: CoreMetrics.Counter, duration: CoreMetrics.Timer)] = [:]
        var functions = FunctionLabelBudget()
    }

    private static let callCache = Mutex(CallCache())

    /// A call answered: op, handler, hook or schedule run.
    static func call(_ app: AppName, kind: CallKind, function: String, status: Int, duration: Duration) {
        guard isEnabled else { return }
        var series = CallSeries(app: app, kind: kind, function: function, status: statusClass(status))
        let handles = callCache.withLock { cache in
            if let known = cache.handles[series] { return known }
            series.function = cache.functions.label(function, of: app)
            if let known = cache.handles[series] { return known }
            let function = series.function
            let made = (
                calls: CoreMetrics.Counter(label: MetricCatalogue.calls, dimensions: [
                    ("app", app.rawValue), ("kind", kind.rawValue), ("function", function), ("status", series.status),
                ]),
                duration: CoreMetrics.Timer(label: MetricCatalogue.callDuration, dimensions: [
                    ("app", app.rawValue), ("kind", kind.rawValue), ("function", function),
                ])
            )
            cache.handles[series] = made
            return made
        }
        handles.calls.increment()
        handles.duration.recordNanoseconds(duration.nanoseconds)
    }

    /// `2xx` … `5xx`: a bounded label for any status.
    static func statusClass(_ status: Int) -> String {
        (1...5).contains(status / 100) ? "\(status / 100)xx" : "5xx"
    }

    // MARK: Instances, schedules, builds, records

    static func instanceStart(_ app: AppName, succeeded: Bool, after duration: Duration) {
        guard isEnabled else { return }
        CoreMetrics.Counter(label: MetricCatalogue.instanceStarts, dimensions: [("app", app.rawValue), ("outcome", succeeded ? "ok" : "failed")]).increment()
        if succeeded {
            CoreMetrics.Timer(label: MetricCatalogue.instanceStartDuration, dimensions: [("app", app.rawValue)]).recordNanoseconds(duration.nanoseconds)
        }
    }

    enum ScheduleOutcome: String { case ok, error, skipped }

    /// A name the app chose (a function's, a schedule's, a hook's) as a label: within the app's
    /// budget of names (`FunctionLabelBudget`), the ones past it as one. Every release may bring new
    /// ones (a push, or `gust config set`, which the app's code reads at import), and a series is
    /// never removed.
    static func appLabel(_ name: String, of app: AppName) -> String {
        callCache.withLock { $0.functions.label(name, of: app) }
    }

    static func scheduleRun(_ app: AppName, schedule: String, outcome: ScheduleOutcome) {
        guard isEnabled else { return }
        CoreMetrics.Counter(label: MetricCatalogue.scheduleRuns, dimensions: [
            ("app", app.rawValue), ("schedule", appLabel(schedule, of: app)), ("outcome", outcome.rawValue),
        ]).increment()
    }

    static func build(_ app: AppName, succeeded: Bool, duration: Duration) {
        guard isEnabled else { return }
        let outcome = succeeded ? "succeeded" : "failed"
        CoreMetrics.Counter(label: MetricCatalogue.builds, dimensions: [("app", app.rawValue), ("outcome", outcome)]).increment()
        CoreMetrics.Timer(label: MetricCatalogue.buildDuration, dimensions: [("outcome", outcome)]).recordNanoseconds(duration.nanoseconds)
    }

    static func recordWrite(_ app: AppName, operation: String, succeeded: Bool) {
        guard isEnabled else { return }
        CoreMetrics.Counter(label: MetricCatalogue.recordWrites, dimensions: [
            ("app", app.rawValue), ("operation", operation), ("outcome", succeeded ? "ok" : "error"),
        ]).increment()
    }

    static func hookFailed(_ app: AppName, hook: String) {
        guard isEnabled else { return }
        CoreMetrics.Counter(label: MetricCatalogue.hookFailures, dimensions: [("app", app.rawValue), ("hook", appLabel(hook, of: app))]).increment()
    }
}

extension GustMetrics {
    /// The certificate served for `domain` now expires at `notAfter`; nil: none is served any more.
    static func certificateExpiry(_ domain: DomainName, notAfter: Double?) {
        guard isEnabled else { return }
        let gauge = CoreMetrics.Gauge(label: MetricCatalogue.certificateExpiry, dimensions: [("domain", domain.rawValue)])
        if let notAfter { gauge.record(notAfter) } else { gauge.destroy() }
    }
}

/// The kinds of call `gust_calls_total` tells apart.
enum CallKind: String, Sendable {
    case op, handler, hook, schedule
}
