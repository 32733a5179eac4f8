import Foundation
import GustCore
import Hummingbird

/// The pages that only read: the overview, an app, a release, the activity log.
extension ConsoleServer {
    /// Minutes the sparklines cover.
    static let historyMinutes = 30

    func overview(_ viewer: Viewer) async throws -> Response {
        let began = ContinuousClock.now
        let token = viewer.token
        let rows = try await backend.withStore { store in
            try store.apps().filter { token.mayUse($0.name) }.map { app in
                (app: app, lastDeploy: try store.lastDeploy(app.name), schedules: try store.scheduleHealth(app.name))
            }
        }
        var apps: [[String: Any]] = []
        for row in rows {
            let name = row.app.name
            let live = backend.live(name)
            var values = traffic(name)
            values["name"] = name.rawValue
            values["live"] = live.map { "v\($0.version)" } ?? "—"
            values["state"] = live?.state ?? "not deployed"
            values["stateClass"] = live?.state ?? "none"
            values["instances"] = live?.instances ?? 0
            values["lastDeploy"] = row.lastDeploy.map { "v\($0.version) \(Self.age($0.createdAt))" } ?? "never"
            values["failing"] = row.schedules.failing
            values["schedules"] = row.schedules.total == 0 ? "—" : "\(row.schedules.total) ok"
            apps.append(values)
        }
        var context = base(viewer)
        context["apps"] = apps
        context["hasApps"] = !apps.isEmpty
        let millis = Double((ContinuousClock.now - began).components.attoseconds) / 1e15 + Double((ContinuousClock.now - began).components.seconds) * 1000
        context["renderMillis"] = String(format: "%.1f", millis)
        return html(ConsoleTemplates.render("overview", context))
    }

    /// Calls per minute now, the error rate over the window, and the sparkline.
    func traffic(_ app: AppName) -> [String: Any] {
        let minutes = backend.history(app, minutes: Self.historyMinutes)
        let calls = minutes.reduce(0) { $0 + $1.calls }
        let errors = minutes.reduce(0) { $0 + $1.errors }
        // The last whole minute, so the figure does not drop at the top of each minute.
        let recent = minutes.dropLast().last?.calls ?? 0
        return [
            "callsPerMinute": max(recent, minutes.last?.calls ?? 0),
            "errorRate": calls == 0 ? "0%" : String(format: "%.1f%%", Double(errors) * 100 / Double(calls)),
            "spark": Sparkline.points(minutes.map(\.calls)),
        ]
    }

    func appPage(_ app: AppName, _ viewer: Viewer) async throws -> Response {
        let data = try await backend.withStore { store in
            (app: try store.requireApp(app), releases: try store.releases(app), config: try store.configVars(app),
             scale: try store.scale(app), limits: try store.effectiveLimits(app), schedules: try store.schedules(app),
             runs: try store.schedules(app).map { try store.runs(app, schedule: $0.name, limit: 5) },
             tokens: try store.tokens(app), activity: try store.activity(app: app, limit: 30),
             ownLimits: try store.limits(app), domains: try store.domains(of: app))
        }
        let live = backend.live(app)
        let liveVersion = data.app.liveVersion
        var context = base(viewer)
        context.merge(traffic(app)) { $1 }
        context["name"] = app.rawValue
        context["url"] = "/apps/\(app.rawValue)/"
        if let live {
            var values: [String: Any] = ["version": live.version, "state": live.state, "stateClass": live.state, "instances": live.instances]
            values["error"] = live.error  // a nil is left out, never rendered as "nil"
            context["live"] = values
        }
        context["releases"] = data.releases.prefix(50).map { release -> [String: Any] in
            [
                "version": release.version, "status": release.version == liveVersion ? "live" : release.status.rawValue,
                "commit": release.shortCommit ?? "—", "description": release.description, "created": Self.age(release.createdAt),
                "canRollback": release.status == .built && release.version != liveVersion && liveVersion != nil,
            ]
        }
        context["ops"] = backend.operations(app).map { op -> [String: Any] in
            ["name": op, "app": app.rawValue, "query": ("op " + op).addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""]
        }
        context["config"] = data.config.map { ["name": $0.name, "value": $0.displayValue, "secret": $0.isSecret, "app": app.rawValue] as [String: Any] }
        context["scale"] = "Instances \(data.scale.min)–\(data.scale.max), \(data.scale.concurrency) calls each (Node), idle after \(data.scale.idleText)"
        context["limits"] = "In force per instance: \(data.limits.summary)"
        context["scaleForm"] = [
            "min": data.scale.min, "max": data.scale.max, "concurrency": data.scale.concurrency,
            "idle": data.scale.idleText,
        ] as [String: Any]
        context["limitsForm"] = Self.limitFields(data.ownLimits)
        context["domains"] = data.domains.map(\.name.rawValue)
        context["charts"] = charts(app, releases: data.releases)
        context["instances"] = await backend.instances(app).map { instance -> [String: Any] in
            ["id": instance.id ?? "starting", "release": instance.release, "state": instance.state, "served": instance.served,
             "memory": instance.memoryBytes.map { ByteCount($0).description } ?? "—"]
        }
        let now = Date()
        context["schedules"] = zip(data.schedules, data.runs).map { schedule, runs -> [String: Any] in
            [
                "name": schedule.name, "spec": "\(schedule.kind) \(schedule.spec)",
                "next": schedule.upcoming(at: now).map { Self.stamp($0) } ?? "—",
                "runs": runs.map { run -> [String: Any] in
                    ["started": Self.stamp(run.startedAt), "status": run.status.rawValue, "statusClass": run.status.rawValue,
                     "seconds": run.seconds.map { String(format: "%.2f s", $0) } ?? "", "error": run.error ?? ""]
                },
            ]
        }
        context["tokens"] = data.tokens.map { token -> [String: Any] in
            ["id": token.id, "app": app.rawValue, "description": token.description.isEmpty ? "—" : token.description,
             "state": token.revokedAt != nil ? "revoked" : (token.isValid() ? "active" : "expired"), "created": Self.age(token.createdAt),
             "expires": token.expiresAt.map { Self.stamp($0) } ?? "never", "active": token.isValid()]
        }
        context["activity"] = data.activity.map(Self.activityRow)
        return html(ConsoleTemplates.render("app", context))
    }

    func releasePage(_ app: AppName, version: Int, _ viewer: Viewer) async throws -> Response {
        let found = try await backend.withStore { store in
            (release: try store.release(app, version: version), live: try store.app(app)?.liveVersion,
             secrets: try store.secretValues(app))
        }
        guard let release = found.release else { throw ConsoleError(404, "No such release.") }
        var context = base(viewer)
        context["name"] = app.rawValue
        context["version"] = version
        let facts: [(String, String?)] = [
            ("Status", release.version == found.live ? "live" : release.status.rawValue), ("Description", release.description),
            ("Commit", release.commit), ("Buildpack", release.buildpack), ("Process", release.process),
            ("Build time", release.buildSeconds.map { String(format: "%.1f s", $0) }), ("Created", Self.stamp(release.createdAt)),
            ("Rollback of", release.rollbackOf.map { "v\($0)" }), ("Error", release.error),
            ("Config", release.displayConfig.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")),
        ]
        context["facts"] = facts.compactMap { label, value in value.map { ["label": label, "value": $0] } }
        context["log"] = release.log.maskingSecrets(found.secrets)
        context["canRollback"] = release.status == .built && release.version != found.live && found.live != nil
        return html(ConsoleTemplates.render("release", context))
    }

    func activityPage(_ viewer: Viewer) async throws -> Response {
        let token = viewer.token
        let entries = try await backend.withStore { store in
            token.isAdmin ? try store.activity(limit: 200) : try store.activity(among: token.apps, limit: 200)
        }
        var context = base(viewer)
        context["activity"] = entries.map(Self.activityRow)
        return html(ConsoleTemplates.render("activity", context))
    }

    static func activityRow(_ entry: Activity) -> [String: Any] {
        var row: [String: Any] = ["at": stamp(entry.at), "actor": entry.actor, "source": entry.source, "action": entry.action, "detail": entry.detail]
        row["app"] = entry.app?.rawValue
        return row
    }

    static func stamp(_ date: Date) -> String {
        let format = ISO8601DateFormatter()
        format.formatOptions = [.withInternetDateTime]
        return format.string(from: date)
    }

    /// `3m ago`, `2h ago`, `5d ago`.
    static func age(_ date: Date, now: Date = Date()) -> String {
        let seconds = max(Int(now.timeIntervalSince(date)), 0)
        switch seconds {
        case ..<60: return "\(seconds)s ago"
        case ..<3600: return "\(seconds / 60)m ago"
        case ..<86_400: return "\(seconds / 3600)h ago"
        default: return "\(seconds / 86_400)d ago"
        }
    }
}

extension Store {
    /// The app's newest release that went live: a push, a rollback or a config change.
    func lastDeploy(_ app: AppName) throws -> Release? {
        guard let live = try self.app(app)?.liveVersion else { return nil }
        return try release(app, version: live)
    }

    /// How many schedules the app has, and those whose last run failed.
    func scheduleHealth(_ app: AppName) throws -> (total: Int, failing: [String]) {
        let schedules = try self.schedules(app)
        let failing = try schedules.filter { try runs(app, schedule: $0.name, limit: 1).first?.status == .error }.map(\.name)
        return (schedules.count, failing)
    }
}
