import Foundation
import GustCore

/// The app page's charts: latency percentiles and instances by state over the
/// last half hour (from gustd's in-memory history), and how long each recent
/// build took (from the releases in the store).
extension ConsoleServer {
    /// Minutes the app page's line charts cover.
    static let chartMinutes = 30
    /// Builds the build-time chart shows, newest last.
    static let chartBuilds = 20

    func charts(_ app: AppName, releases: [Release]) -> [String: Any] {
        let minutes = backend.history(app, minutes: Self.chartMinutes)
        let latency = Self.latencyChart(
            id: "latency", title: "Latency (p50, p95, p99)", minutes: minutes,
            lead: "Latency per minute over the last \(Self.chartMinutes) minutes", none: "No calls in the last \(Self.chartMinutes) minutes."
        )
        let now = minutes.last?.instances ?? ConsoleInstanceCounts()
        let instances = ConsoleChart.lines(
            id: "instances", title: "Instances by state",
            description: "Instances per minute over the last \(Self.chartMinutes) minutes, the most seen of each state in the minute. "
                + "This minute: \(now.busy) busy, \(now.idle) idle, \(now.starting) starting.",
            series: [
                .init(name: "busy", style: "busy", values: minutes.map { Double($0.instances.busy) }),
                .init(name: "idle", style: "idle", values: minutes.map { Double($0.instances.idle) }),
                .init(name: "starting", style: "starting", values: minutes.map { Double($0.instances.starting) }),
            ],
            unit: ConsoleChart.count
        )
        let built = releases.filter { ($0.buildSeconds ?? 0) > 0 }.prefix(Self.chartBuilds).reversed()
            .map { release in (label: "v\(release.version)" + (release.status == .failed ? " (failed)" : ""), value: release.buildSeconds ?? 0) }
        let builds = ConsoleChart.bars(
            id: "builds", title: "Build time per release",
            description: built.isEmpty ? "No builds yet."
                : "How long each of the last \(built.count) builds took: " + built.map { "\($0.label) \(ConsoleChart.seconds($0.value))" }.joined(separator: ", ") + ".",
            bars: Array(built), unit: ConsoleChart.seconds
        )
        return ["lineCharts": [latency, instances], "barCharts": [builds], "functions": functionCharts(app)]
    }

    /// The "Functions" section: per function with calls in the window (busiest first), calls and errors per minute,
    /// and latency percentiles. Chart ids are by position, never by the (app-controlled) name.
    func functionCharts(_ app: AppName) -> [[String: Any]] {
        backend.functionHistory(app, minutes: Self.chartMinutes).enumerated().map { index, function -> [String: Any] in
            let minutes = function.minutes
            let calls = minutes.reduce(0) { $0 + $1.calls }, errors = minutes.reduce(0) { $0 + $1.errors }
            let label = "\(function.kind) \(function.name)"
            let summary = "\(calls) call(s), \(errors) error(s) in the last \(Self.chartMinutes) minutes"
            let traffic = ConsoleChart.lines(
                id: "fn\(index)-calls", title: "Calls and errors per minute: \(label)",
                description: "\(summary); the busiest minute had \(minutes.map(\.calls).max() ?? 0) call(s).",
                series: [
                    .init(name: "calls", style: "calls", values: minutes.map { Double($0.calls) }),
                    .init(name: "errors", style: "errors", values: minutes.map { Double($0.errors) }),
                ],
                unit: ConsoleChart.count
            )
            let latency = Self.latencyChart(
                id: "fn\(index)-latency", title: "Latency (p50, p95, p99): \(label)", minutes: minutes,
                lead: "Latency per minute of \(label)", none: "No calls."
            )
            return [
                "index": index, "kind": function.kind, "name": function.name, "summary": summary,
                "lineCharts": [traffic, latency],
            ]
        }
    }

    /// A chart of the p50, p95 and p99 latency per minute. Its description starts with `lead` and says the last
    /// minute's percentiles and the highest p99 in words; `none` where no minute had calls.
    static func latencyChart(id: String, title: String, minutes: [ConsoleMinute], lead: String, none: String) -> [String: Any] {
        let recent = minutes.last { $0.latency != nil }?.latency
        let worst = minutes.compactMap { $0.latency?.p99 }.max()
        let description = recent.map { recent in
            "\(lead). In the last minute with calls: p50 \(ConsoleChart.milliseconds(recent.p50)), "
                + "p95 \(ConsoleChart.milliseconds(recent.p95)), p99 \(ConsoleChart.milliseconds(recent.p99)); the highest p99 was "
                + "\(ConsoleChart.milliseconds(worst ?? recent.p99))."
        } ?? none
        return ConsoleChart.lines(
            id: id, title: title, description: description,
            series: [
                .init(name: "p50", style: "p50", values: minutes.map { $0.latency?.p50 }),
                .init(name: "p95", style: "p95", values: minutes.map { $0.latency?.p95 }),
                .init(name: "p99", style: "p99", values: minutes.map { $0.latency?.p99 }),
            ],
            unit: ConsoleChart.milliseconds
        )
    }
}
