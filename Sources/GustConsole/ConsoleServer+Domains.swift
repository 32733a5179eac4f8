import Foundation
import GustCore
import Hummingbird

/// The domains page: the apps' own domains with their certificates, as
/// `gust domains list` shows them, and adding or removing one as
/// `gust domains add/remove` do (the store's checks: a name another app has,
/// gustd's own domain and the `APP.DOMAIN` names are refused; at most
/// `AppDomain.maximumPerApp` per app), then gustd is told, as the admin API's
/// refresh tells it. A scoped token sees and changes only its apps' domains.
extension ConsoleServer {
    func domainsPage(_ viewer: Viewer) async throws -> Response {
        let token = viewer.token
        let (domains, apps) = try await backend.withStore { store in
            (try store.domains().filter { token.mayUse($0.app) }, try store.apps().map(\.name).filter { token.mayUse($0) })
        }
        var context = base(viewer)
        context["domains"] = domains.map { domain -> [String: Any] in
            [
                "name": domain.name.rawValue, "app": domain.app.rawValue,
                "status": domain.status + (domain.renewRequested ? " (renewing)" : ""),
                "expires": domain.expiresAt.map { Self.stamp($0) } ?? "—",
                "error": domain.error.map { String($0.split(separator: "\n").first ?? "").prefix(200) }.map(String.init) ?? "",
            ]
        }
        context["apps"] = apps.map(\.rawValue)
        context["hasApps"] = !apps.isEmpty
        return html(ConsoleTemplates.render("domains", context))
    }

    func addDomain(_ form: FormBody, _ viewer: Viewer) async throws -> Response {
        try await changeDomain(form, viewer, action: "domain add") { store, name, app in
            try store.addDomain(name, to: app)
            return "Added \(name) to \(app)."
        }
    }

    func removeDomain(_ form: FormBody, _ viewer: Viewer) async throws -> Response {
        try await changeDomain(form, viewer, action: "domain remove") { store, name, app in
            try store.removeDomain(name, from: app)
            return "Removed \(name) from \(app): gustd stops serving it."
        }
    }

    private func changeDomain(
        _ form: FormBody, _ viewer: Viewer, action: String, _ change: @escaping @Sendable (Store, DomainName, AppName) throws -> String
    ) async throws -> Response {
        // Another app than the token's is not found, as on every page.
        guard let app = try? AppName(form["app"] ?? ""), viewer.token.mayUse(app),
            try await backend.withStore({ try $0.app(app) != nil })
        else { throw ConsoleError(404, "No such app.") }
        let actor = viewer.token.actor
        do {
            let name = try DomainName((form["domain"] ?? "").trimmingCharacters(in: .whitespaces))
            let message = try await backend.withStore { store in
                let message = try change(store, name, app)
                try? store.recordActivity(app: app, actor: actor, source: "console", action: action, detail: name.rawValue)
                return message
            }
            await backend.refreshDomains()
            sessions.flash(viewer.session.id, message)
        } catch let error as GustError {
            sessions.flash(viewer.session.id, error.message, isError: true)
        }
        return Self.redirect("/domains")
    }
}
