import Foundation
import GustCore
import HTTPTypes
import Hummingbird
import NIOCore

/// What the console changes: each through the path the CLI and the records API
/// take (a new release from the live artifact, a deploy by the supervisor, the
/// records hub with its hooks), and each noted in the activity log.
extension ConsoleServer {
    func rollback(_ app: AppName, _ form: FormBody, _ viewer: Viewer) async throws -> Response {
        guard let version = form["version"].flatMap(Int.init) else { throw ConsoleError(400, "Which release?") }
        let home = backend.home
        let target = try await backend.withStore { store -> Release in
            guard let live = try store.requireApp(app).liveVersion else { throw GustError("\(app) has nothing live to roll back from.") }
            let target = try store.requireRelease(app, version: version)
            guard target.status != .failed else { throw GustError("v\(version) failed, so it cannot be rolled back to.") }
            guard target.version != live else { throw GustError("v\(version) is already live.") }
            guard ReleaseRetention.hasArtifact(target, home: home) else {
                throw GustError("v\(version) was pruned: its artifact is gone, so it cannot be rolled back to.")
            }
            return target
        }
        return try await activate(
            app, from: target, description: "Rollback to v\(version)", rollbackOf: version, config: target.config,
            secretNames: target.secretNames, action: "rollback", viewer: viewer
        )
    }

    func setConfig(_ app: AppName, _ form: FormBody, _ viewer: Viewer) async throws -> Response {
        let name = (form["name"] ?? "").trimmingCharacters(in: .whitespaces)
        let value = form["value"] ?? ""
        let secret = form["secret"] == "1"
        let live = try await backend.withStore { store -> Release? in
            try store.setConfig(app, [name: value], secret: secret)
            return try store.app(app)?.liveVersion.flatMap { try store.release(app, version: $0) }
        }
        return try await releaseConfig(app, live: live, description: "Set \(name)", viewer: viewer)
    }

    func unsetConfig(_ app: AppName, _ form: FormBody, _ viewer: Viewer) async throws -> Response {
        let name = form["name"] ?? ""
        let (removed, live) = try await backend.withStore { store -> ([String], Release?) in
            (try store.unsetConfig(app, [name]), try store.app(app)?.liveVersion.flatMap { try store.release(app, version: $0) })
        }
        guard !removed.isEmpty else { throw ConsoleError(400, "\(name) was not set; nothing changed.") }
        return try await releaseConfig(app, live: live, description: "Unset \(name)", viewer: viewer)
    }

    /// As `gust config`: the change goes live as a new release of the live artifact, or waits for the next push.
    private func releaseConfig(_ app: AppName, live: Release?, description: String, viewer: Viewer) async throws -> Response {
        guard let live else {
            try? await note(app, viewer, "config", "\(description) (nothing live yet: the next push uses it)")
            sessions.flash(viewer.session.id, "\(description). Nothing is live yet: the next push uses it.")
            return Self.redirect("/apps/\(app)")
        }
        let (config, secretNames) = try await backend.withStore { (try $0.config(app), try $0.secretNames(app)) }
        return try await activate(
            app, from: live, description: description, config: config, secretNames: secretNames, action: "config", viewer: viewer
        )
    }

    /// Records the new release, has the supervisor start, check and switch to it, and notes who did it.
    private func activate(
        _ app: AppName, from base: Release, description: String, rollbackOf: Int? = nil, config: [String: String],
        secretNames: [String], action: String, viewer: Viewer
    ) async throws -> Response {
        let home = backend.home
        // One deploy of an app at a time: a push or the CLI holding the lock makes this one wait for nothing.
        guard let lock = FileLock(ifFree: home.lock(app)) else {
            throw ConsoleError(409, "Another deploy of \(app) is in progress; try again when it is done.")
        }
        defer { withExtendedLifetime(lock) {} }
        let release = try await backend.withStore { store in
            try store.recordReuse(of: base, description: description, rollbackOf: rollbackOf, config: config, secretNames: secretNames)
        }
        do {
            _ = try await backend.deploy(app, version: release.version)
        } catch {
            let message = (error as? GustError)?.message ?? String(describing: error)
            _ = try? await backend.withStore { try $0.markFailed(app, version: release.version, error: message, appendingLog: "") }
            throw ConsoleError(502, "v\(release.version) did not go live: \(message)")
        }
        try? await note(app, viewer, action, "\(description): v\(release.version)")
        sessions.flash(viewer.session.id, "\(description): v\(release.version) is live.")
        return Self.redirect("/apps/\(app)")
    }

    /// Appends to the activity log: the console's actions are the server's to record.
    func note(_ app: AppName, _ viewer: Viewer, _ action: String, _ detail: String) async throws {
        let actor = viewer.token.actor
        try await backend.withStore { try $0.recordActivity(app: app, actor: actor, source: "console", action: action, detail: detail) }
    }

    // MARK: Logs and ops

    func logsPage(_ app: AppName, _ query: FormBody, _ viewer: Viewer) async throws -> Response {
        let function = query["function"].flatMap { $0.isEmpty ? nil : $0 }
        let home = backend.home
        let lines = try await backend.offTheLoops { AppLog(home: home, app: app).tail(200, function: function) }
        let ops = backend.operations(app)
        var context = base(viewer)
        context["name"] = app.rawValue
        context["function"] = function ?? ""
        context["functionQuery"] = (function ?? "").addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        context["lines"] = lines.map { ["text": $0.formatted, "stream": $0.stream] }
        context["ops"] = ops
        context["functions"] = ops.map { "op \($0)" }
        context["op"] = ops.first ?? ""
        context["args"] = "{}"
        return html(ConsoleTemplates.render("logs", context))
    }

    /// Calls an op with the form's JSON arguments; answers its answer and the log lines it wrote
    /// (as JSON for the page's script, else as a page).
    func call(_ app: AppName, _ form: FormBody, _ viewer: Viewer, json: Bool) async throws -> Response {
        let op = (form["op"] ?? "").trimmingCharacters(in: .whitespaces)
        guard !op.isEmpty else { throw ConsoleError(400, "Name the op to call.") }
        let arguments = (form["args"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let body = Data((arguments.isEmpty ? "{}" : arguments).utf8)
        guard (try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed])) != nil else {
            throw ConsoleError(400, "The arguments are not JSON.")
        }
        let began = Date()
        let answer = await backend.call(app, op: op, arguments: body)
        // An instance's output reaches the log a moment after its answer.
        try? await Task.sleep(for: .milliseconds(300))
        let home = backend.home
        let lines = try await backend.offTheLoops {
            AppLog(home: home, app: app).tail(100, function: "op \(op)").filter { $0.time >= began.addingTimeInterval(-1) }
        }
        if json {
            let object: [String: Any] = ["status": answer.status, "body": answer.body, "lines": lines.map(\.formatted)]
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data("{}".utf8)
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        var context = base(viewer)
        context["name"] = app.rawValue
        context["op"] = op
        context["status"] = answer.status
        context["body"] = answer.body
        context["lines"] = lines.map { ["text": $0.formatted] }
        return html(ConsoleTemplates.render("call", context))
    }

    // MARK: Records

    func recordsPage(_ app: AppName, _ query: FormBody, _ viewer: Viewer) async throws -> Response {
        var context = base(viewer)
        context["name"] = app.rawValue
        context["types"] = await backend.recordTypes(app)
        let type = query["type"] ?? ""
        let field = query["field"] ?? "", value = query["value"] ?? ""
        context["type"] = type
        context["field"] = field
        context["value"] = value
        if !type.isEmpty {
            context["hasType"] = true
            var filter = RecordStore.Query(limit: RecordStore.maxLimit)
            if !field.isEmpty {
                // A value that reads as JSON (42, true, null) is compared as that; anything else as a string.
                let parsed = (try? JSONValue.parse(Data(value.utf8))).flatMap { parsed -> JSONValue? in
                    if case .object = parsed { return nil }
                    if case .array = parsed { return nil }
                    return parsed
                }
                filter.filters = [field: parsed ?? .string(value)]
            }
            do {
                let records = try await backend.records(app, type: type, query: filter)
                context["rows"] = records.map { record -> [String: Any] in
                    var fields = record
                    let id = fields.removeValue(forKey: "_id").flatMap(\.consoleText) ?? ""
                    fields["_created_at"] = nil
                    let updated = fields.removeValue(forKey: "_updated_at").flatMap(\.consoleText) ?? ""
                    let summary = String(decoding: JSONValue.object(fields).encoded(), as: UTF8.self)
                    return ["id": id, "summary": summary.count > 200 ? String(summary.prefix(200)) + "…" : summary, "updated": updated]
                }
            } catch let error as GustError {
                context["error"] = error.message
                context["rows"] = [[String: Any]]()
            }
        }
        return html(ConsoleTemplates.render("records", context))
    }

    func recordPage(_ app: AppName, type: String, id: String, _ viewer: Viewer, error: String?, fields: String?) async throws -> Response {
        let record: RecordStore.Record
        do { record = try await backend.record(app, type: type, id: id) } catch let error as GustError {
            throw ConsoleError(error.code == 404 ? 404 : 400, error.message)
        }
        var context = base(viewer)
        context["name"] = app.rawValue
        context["type"] = type
        context["id"] = id
        context["json"] = Self.pretty(.object(record))
        context["fields"] = fields ?? Self.pretty(.object(record.filter { !$0.key.hasPrefix("_") }))
        context["error"] = error  // nil leaves it out
        return html(ConsoleTemplates.render("record", context), status: error == nil ? .ok : .unprocessableContent)
    }

    func saveRecord(_ app: AppName, type: String, id: String, _ form: FormBody, _ viewer: Viewer) async throws -> Response {
        let text = form["fields"] ?? ""
        guard let fields = (try? JSONValue.parse(Data(text.utf8)))?.objectValue else {
            return try await recordPage(app, type: type, id: id, viewer, error: "The fields must be a JSON object.", fields: text)
        }
        do {
            _ = try await backend.saveRecord(app, type: type, id: id, fields: fields.filter { !$0.key.hasPrefix("_") })
        } catch let error as GustError {
            // A before-hook's refusal, in its own words.
            return try await recordPage(app, type: type, id: id, viewer, error: error.message, fields: text)
        }
        try? await note(app, viewer, "record edit", "\(type)/\(id)")
        sessions.flash(viewer.session.id, "Saved \(type) \(id).")
        return Self.redirect("/apps/\(app)/records/\(Self.pathPart(type))/\(Self.pathPart(id))")
    }

    func deleteRecord(_ app: AppName, type: String, id: String, _ viewer: Viewer) async throws -> Response {
        do {
            try await backend.deleteRecord(app, type: type, id: id)
        } catch let error as GustError {
            return try await recordPage(app, type: type, id: id, viewer, error: error.message, fields: nil)
        }
        try? await note(app, viewer, "record delete", "\(type)/\(id)")
        sessions.flash(viewer.session.id, "Deleted \(type) \(id).")
        return Self.redirect("/apps/\(app)/records?type=\(Self.pathPart(type))")
    }

    static func pathPart(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_."))) ?? ""
    }

    static func pretty(_ value: JSONValue) -> String {
        let data = value.encoded()
        guard let object = try? JSONSerialization.jsonObject(with: data),
            let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        else { return String(decoding: data, as: UTF8.self) }
        return String(decoding: pretty, as: UTF8.self)
    }
}

extension JSONValue {
    /// A string field's text, for the record list's id and timestamps.
    fileprivate var consoleText: String? {
        if case .string(let text) = self { return text }
        return nil
    }
}
