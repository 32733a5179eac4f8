import Foundation
import GustCore
import Hummingbird

/// Steering an app from its page: scale, limits and app tokens, each through
/// the store's own checked path that `gust scale`, `gust limits` and
/// `gust tokens` take (`Store.changeScale`, `Store.changeLimits`,
/// `Store.createToken`), with the same messages. A scoped console token is held
/// under the admin's ceilings as a scoped SSH key is. A refusal comes back to
/// the app page as an error line above its forms; nothing is half-applied.
extension ConsoleServer {
    func changeScale(_ app: AppName, _ form: FormBody, _ viewer: Viewer) async throws -> Response {
        let underCeilings = !viewer.token.isAdmin
        let actor = viewer.token.actor
        do {
            let current = try await backend.withStore { try $0.scale(app) }
            // Only what the form changed: a scoped token may lower --min without restating a --max over the ceiling.
            var change = ScaleChange()
            change.min = try Self.whole(form["min"], "Min", unless: current.min)
            change.max = try Self.whole(form["max"], "Max", unless: current.max)
            change.concurrency = try Self.whole(form["concurrency"], "Concurrency", unless: current.concurrency)
            let idle = (form["idle"] ?? "").trimmingCharacters(in: .whitespaces)
            if !idle.isEmpty, (try? ScaleChange.seconds(idle)) != current.idleSeconds { change.idle = idle }
            guard !change.isEmpty else { return refuse(app, viewer, "Nothing changed: the scale is already \(current.activityText).") }
            let settings = try await backend.withStore { [change] in
                try $0.changeScale(app, change, underCeilings: underCeilings, actor: actor, source: "console")
            }
            await backend.reconcile()  // as the CLI asks gustd: the pool takes the new rules at once
            sessions.flash(viewer.session.id, "Scale of \(app): \(settings.activityText).")
        } catch let error as GustError {
            return refuse(app, viewer, error.message)
        }
        return Self.redirect("/apps/\(app)#scale")
    }

    func changeLimits(_ app: AppName, _ form: FormBody, _ viewer: Viewer) async throws -> Response {
        let underCeilings = !viewer.token.isAdmin
        let actor = viewer.token.actor
        do {
            let own = try await backend.withStore { try $0.limits(app) }
            // A field left as it was shown is not a change (so `default` stays default, and a ceiling is not re-checked for it).
            let shown = Self.limitFields(own)
            func changed(_ name: String) -> String? {
                let value = (form[name] ?? "").trimmingCharacters(in: .whitespaces)
                return value.isEmpty || value == shown[name] ? nil : value
            }
            let change = LimitsChange(memory: changed("memory"), cpu: changed("cpu"), pids: changed("pids"), tmp: changed("tmp"), disk: changed("disk"))
            guard !change.isEmpty else { return refuse(app, viewer, "Nothing changed: the limits are as they were.") }
            let limits = try await backend.withStore {
                try $0.changeLimits(app, change, underCeilings: underCeilings, actor: actor, source: "console")
            }
            sessions.flash(viewer.session.id, "Limits of \(app): \(limits.summary). New instances get them; running ones keep theirs until replaced.")
        } catch let error as GustError {
            return refuse(app, viewer, error.message)
        }
        return Self.redirect("/apps/\(app)#limits")
    }

    /// Creates an app token and shows its secret on this answer only: it is never stored, flashed or logged.
    func createToken(_ app: AppName, _ form: FormBody, _ viewer: Viewer) async throws -> Response {
        let description = (form["description"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let expires = (form["expires"] ?? "").trimmingCharacters(in: .whitespaces)
        let actor = viewer.token.actor
        let created: (token: AppToken, secret: String)
        do {
            guard description.count <= 200 else { throw GustError("The description is longer than 200 characters.") }
            let expiry = expires.isEmpty ? nil : Date().addingTimeInterval(try AppToken.lifetime(expires))
            created = try await backend.withStore { store in
                let created = try store.createToken(app, description: description, expiresAt: expiry)
                try? store.recordActivity(app: app, actor: actor, source: "console", action: "token create", detail: created.token.activityText)
                return created
            }
        } catch let error as GustError {
            return refuse(app, viewer, error.message)
        }
        var context = base(viewer)
        context["name"] = app.rawValue
        context["id"] = created.token.id
        context["secret"] = created.secret
        context["expires"] = created.token.expiresAt.map { Self.stamp($0) } ?? "never"
        return html(ConsoleTemplates.render("token", context), status: .created)
    }

    func revokeToken(_ app: AppName, id: String, _ viewer: Viewer) async throws -> Response {
        let actor = viewer.token.actor
        do {
            guard let id = Int(id) else { throw GustError("'\(id)' is not a token id.") }
            try await backend.withStore { store in
                try store.revokeToken(app, id: id)
                try? store.recordActivity(app: app, actor: actor, source: "console", action: "token revoke", detail: "token \(id)")
            }
            sessions.flash(viewer.session.id, "Revoked token \(id) of \(app): it stops working at once.")
        } catch let error as GustError {
            return refuse(app, viewer, error.message)
        }
        return Self.redirect("/apps/\(app)#tokens")
    }

    /// Back to the app page with the refusal above its forms (as the CLI would print it).
    private func refuse(_ app: AppName, _ viewer: Viewer, _ message: String) -> Response {
        sessions.flash(viewer.session.id, message, isError: true)
        return Self.redirect("/apps/\(app)")
    }

    /// A form's whole number, nil when blank or as it was; else a refusal naming the field.
    static func whole(_ text: String?, _ label: String, unless current: Int) throws -> Int? {
        let text = (text ?? "").trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { return nil }
        guard let value = Int(text) else { throw GustError("\(label) '\(text)' is not a whole number.") }
        return value == current ? nil : value
    }

    /// The app's own limits as its form shows them: `256M`, `0.5`, `64`, or `default`.
    static func limitFields(_ limits: AppLimits) -> [String: String] {
        func show(_ value: Int?, _ format: (Int) -> String) -> String { value.map(format) ?? "default" }
        return [
            "memory": show(limits.memory, LimitSize.format), "cpu": show(limits.cpuMillis, LimitSize.formatCPU),
            "pids": show(limits.pids, String.init), "tmp": show(limits.tmp, LimitSize.format), "disk": show(limits.disk, LimitSize.format),
        ]
    }
}
