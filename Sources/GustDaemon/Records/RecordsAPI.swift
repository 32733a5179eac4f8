import Foundation
import GustCore
import HTTPTypes
import Hummingbird
import NIOCore

/// `/_/records/TYPE[/ID]`: create, read, update, delete and query an app's
/// records (docs/records.md). The gateway serves it to clients holding an app
/// token; the records channel serves the same thing to the app's own functions.
struct RecordsAPI {
    let hub: RecordsHub
    /// Pages answered and not yet read, per app (one for the gateway's and the channel's answers).
    var unread = UnreadPages()

    /// Answers one records request. `path` is what follows `/_/records`
    /// (`/cat`, `/cat/ID`); `caller` is set when a function makes the request.
    func respond(
        app: AppName, method: HTTPRequest.Method, path: Substring, query: String?, body: ByteBuffer, caller: RecordsCaller?
    ) async -> Response {
        do {
            return try await route(app: app, method: method, path: path, query: query, body: body, caller: caller)
        } catch let error as GustError {
            return Self.error(error.code, error.message)
        } catch let refusal as CallRefusal {
            return Self.error(refusal.status, refusal.message, headers: refusal.headers)
        } catch {
            return Self.error(500, "The record store failed: \(error)")
        }
    }

    private func route(
        app: AppName, method: HTTPRequest.Method, path: Substring, query: String?, body: ByteBuffer, caller: RecordsCaller?
    ) async throws -> Response {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map { $0.removingPercentEncoding ?? String($0) }
        guard (1...2).contains(parts.count) else {
            throw GustError.notFound("Records live at /_/records/TYPE and /_/records/TYPE/ID.")
        }
        let type = parts[0]
        try RecordStore.validateType(type)
        let id = parts.count == 2 ? parts[1] : nil
        switch (method, id) {
        case (.get, nil):
            var fields = HTTPFields()
            fields[.contentType] = "application/json"
            if unread.isFull(app) { throw unread.refusal(app) }
            let page = try await hub.page(app, type, try Self.query(query))
            guard let hold = unread.hold(page.readableBytes, for: app) else { throw unread.refusal(app) }
            return Response(status: .ok, headers: fields, body: ResponseBody(contentLength: page.readableBytes) { writer in
                withExtendedLifetime(hold) {}  // the page's bytes are held for as long as the page is
                try await writer.write(page)
                try await writer.finish(nil)
            })
        case (.get, let id?):
            return Self.record(200, try await hub.get(app, type, id: id))
        case (.post, nil):
            return Self.record(201, try await hub.save(app, type, id: nil, fields: try Self.fields(body), caller: caller))
        case (.put, let id?), (.patch, let id?):
            return Self.record(200, try await hub.save(app, type, id: id, fields: try Self.fields(body), caller: caller))
        case (.delete, let id?):
            try await hub.delete(app, type, id: id, caller: caller)
            return Gateway.json(200, FlatJSON([("deleted", .string(id))]))
        default:
            let allowed = id == nil ? "GET, POST" : "GET, PUT, PATCH, DELETE"
            return Self.error(405, "\(method) is not allowed here: use \(allowed).", headers: [.allow: allowed])
        }
    }

    /// A records request's body, at most one record's worth: a write never
    /// holds more than that in memory, and a bigger one is a 413.
    static func collect(_ body: RequestBody) async throws -> ByteBuffer {
        do {
            return try await body.collect(upTo: RecordStore.maxRecordBytes)
        } catch is NIOTooManyBytesError {
            throw GustError(
                "The body is larger than 1 MiB; a record may be at most 1 MiB (\(RecordStore.maxRecordBytes) bytes) of JSON: "
                    + "keep large content elsewhere and store a reference to it.",
                code: 413
            )
        }
    }

    /// `where` (a JSON object of field → value, compared for equality), `order`, `limit` and `offset`.
    static func query(_ text: String?) throws -> RecordStore.Query {
        var query = RecordStore.Query()
        for pair in (text ?? "").split(separator: "&") {
            // Empty halves kept: `=` is two empty halves, not none (`halves[0]` trapped on it).
            let halves = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map {
                $0.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
            }
            let value = halves.count > 1 ? halves[1] : ""
            switch halves[0] {
            case "where":
                guard let filters = (try? JSONValue.parse(Data(value.utf8)))?.objectValue else {
                    throw GustError("`where` must be a JSON object of field values, like where={\"name\":\"Tom\"}.")
                }
                for (field, value) in filters {
                    if case .array = value { throw badFilter(field) }
                    if case .object = value { throw badFilter(field) }
                }
                query.filters = filters
            case "order":
                query.order = value
            case "limit":
                guard let limit = Int(value), (1...RecordStore.maxLimit).contains(limit) else {
                    throw GustError("`limit` must be a number from 1 to \(RecordStore.maxLimit).")
                }
                query.limit = limit
            case "offset":
                guard let offset = Int(value), offset >= 0 else {
                    throw GustError("`offset` must be a number from 0 (the `next_offset` of the previous page).")
                }
                query.offset = offset
            default:
                throw GustError("Unknown query parameter '\(halves[0].prefix(32))': use where, order, limit and offset.")
            }
        }
        return query
    }

    private static func badFilter(_ field: String) -> GustError {
        GustError("`where` compares fields for equality with a string, number, boolean or null; '\(field.prefix(64))' has a list or object.")
    }

    static func fields(_ body: ByteBuffer) throws -> RecordStore.Record {
        guard body.readableBytes > 0 else { return [:] }
        guard let fields = (try? JSONValue.parse(Data(body.readableBytesView)))?.objectValue else {
            throw GustError("The body must be a JSON object of the record's fields.")
        }
        return fields
    }

    static func record(_ status: Int, _ record: RecordStore.Record) -> Response {
        json(status, .object(record))
    }

    /// Written from `JSONValue` itself, never through `Any`, so integers stay exact.
    private static func json(_ status: Int, _ value: JSONValue) -> Response {
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        return Response(status: .init(code: status), headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: value.encoded())))
    }

    /// An app's own codes (LeanCloud style, 123) travel in the body; the status is the code if it is an HTTP error, else 400.
    static func error(_ code: Int, _ message: String, headers: HTTPFields = [:]) -> Response {
        Gateway.json((400...599).contains(code) ? code : 400, Gateway.errorJSON(code: code, message), headers: headers)
    }
}
