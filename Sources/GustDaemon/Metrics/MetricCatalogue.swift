/// Every series gustd exports, with the help text Prometheus shows for it:
/// one place to read what `/metrics` holds (docs/operations.md lists them).
///
/// Label values are bounded: apps are the apps gustd serves, functions are
/// the names the live release's manifest declares (anything else is `other`),
/// at most `FunctionLabelBudget.perApp` of them per app over gustd's life,
/// statuses are classes (`2xx` … `5xx`), never raw paths or messages.
enum MetricCatalogue {
    static let calls = "gust_calls_total"
    static let callDuration = "gust_call_duration_seconds"
    static let queueDepth = "gust_queue_depth"
    static let instances = "gust_instances"
    static let instanceStarts = "gust_instance_starts_total"
    static let instanceStartDuration = "gust_instance_start_duration_seconds"
    static let scheduleRuns = "gust_schedule_runs_total"
    static let builds = "gust_builds_total"
    static let buildDuration = "gust_build_duration_seconds"
    static let recordWrites = "gust_record_writes_total"
    static let hookFailures = "gust_hook_failures_total"
    static let certificateExpiry = "gust_certificate_expiry_seconds"

    static let help: [String: String] = [
        calls: "Calls answered, by app, kind (op, handler, hook, schedule), function (from the live release's manifest; other for anything else) and status class.",
        callDuration: "How long calls took from arrival to answer, waiting for an instance included, by app, kind and function.",
        queueDepth: "Calls waiting for an instance of the app's live release.",
        instances: "Instances of the app's live release by state (starting, idle, busy, draining).",
        instanceStarts: "Instances started (cold starts), by app and outcome (ok, failed).",
        instanceStartDuration: "How long an instance took to start and answer its manifest, by app.",
        scheduleRuns: "Schedule runs by app, schedule and outcome (ok, error, skipped).",
        builds: "Builds of pushes by app and outcome (succeeded, failed), as gust-receive reports them.",
        buildDuration: "How long builds took (export, buildpack, artifact), by outcome.",
        recordWrites: "Record store writes by app, operation (save, delete) and outcome (ok, error).",
        certificateExpiry: "When the certificate gustd serves for an app's domain expires, in seconds since the Unix epoch, by domain (the domains of `gust domains`).",
        hookFailures: "Record hooks that failed (raised, timed out, crashed or could not run), by app and hook.",
    ]

    /// Histogram buckets, in seconds, by series: calls and starts are short, builds long.
    static func buckets(_ name: String) -> [Duration] {
        switch name {
        case buildDuration:
            [1, 2, 5, 10, 20, 30, 60, 120, 300, 600].map { .seconds($0) }
        case instanceStartDuration:
            [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30].map { .milliseconds(Int($0 * 1000)) }
        default:
            [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30].map { .microseconds(Int($0 * 1_000_000)) }
        }
    }
}
