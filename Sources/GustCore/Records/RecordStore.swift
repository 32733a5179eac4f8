public import Foundation

/// An app's record store: JSON records by type in `data/APP/records.sqlite`.
///
/// The store sets `_id`, `_created_at` and `_updated_at`; the rest of a record
/// is the app's. Queries filter by equality on top-level fields, order by one
/// field and limit the count, a page at a time. Not `Sendable`: gustd owns one per app
/// behind an actor, which writes through `db`; queries go through a second connection,
/// `reader`, from another thread (both are opened FULLMUTEX).
///
/// Bounds: a record is at most `maxRecordBytes` of JSON, a page at most
/// `maxLimit` records and, past its first record, `pageByteBudget` bytes; a query
/// is stopped after `queryLimit`.
public final class RecordStore {
    public typealias Record = [String: JSONValue]

    public struct Query: Sendable, Equatable {
        public var filters: [String: JSONValue]
        /// A field, `-field` for descending.
        public var order: String?
        public var limit: Int
        /// Records to skip (the `next_offset` of the previous page).
        public var offset: Int

        public init(filters: [String: JSONValue] = [:], order: String? = nil, limit: Int = 100, offset: Int = 0) {
            self.filters = filters
            self.order = order
            self.limit = limit
            self.offset = offset
        }
    }

    /// One page of a query: `nextOffset` is set when the byte budget cut it
    /// short, and is where the next page starts.
    public struct Page: Sendable {
        /// Each record's JSON as the records API answers it (`recordText`), not decoded.
        public var texts: [[UInt8]]
        public var nextOffset: Int?

        /// The records, decoded.
        public var records: [Record] { texts.compactMap { try? JSONValue.parse(Data($0)).objectValue } }

        /// The records API's answer: `{"more":true,"next_offset":N,"records":[…]}`, or
        /// `{"records":[…]}` for the last page (as `JSONText` writes it, keys sorted).
        public var answer: [UInt8] {
            var out: [UInt8] = Array("{".utf8)
            if let nextOffset { out += Array("\"more\":true,\"next_offset\":\(nextOffset),".utf8) }
            out += Array("\"records\":[".utf8)
            for (index, text) in texts.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                out += text
            }
            out += Array("]}".utf8)
            return out
        }
    }

    public static let maxLimit = 100
    /// The largest record, as the JSON stored for it.
    public static let maxRecordBytes = 1024 * 1024
    /// How many bytes of stored JSON one page carries (at least one record, whatever its size).
    public static let pageByteBudget = 4 * 1024 * 1024
    /// How long a query may run. Filters and orders on fields read every record of the type (its
    /// JSON), so a query over a big store, or far into it with `offset`, can run for long: it is
    /// stopped rather than keep a thread of the app's reads (and a connection) from others.
    public static let queryLimit: Duration = .seconds(10)
    let db: Database
    /// Queries read through a connection of their own: in WAL mode they see what is committed,
    /// never a write in progress (a before-hook's), and a long one holds up no write.
    private let reader: Database

    public init(url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        db = try Database(url: url)
        try db.execute("""
            CREATE TABLE IF NOT EXISTS records (
                type       TEXT NOT NULL,
                id         TEXT NOT NULL,
                data       TEXT NOT NULL,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                PRIMARY KEY (type, id)
            );
            """)
        reader = try Database(readingFrom: url)
    }

    /// Bounds the store at the app's disk limit: a write past it fails with a message naming the limit, and keeps nothing.
    public func limit(toBytes bytes: Int?, app: AppName) throws {
        let shown = bytes.map(LimitSize.spoken) ?? ""
        try db.limitSize(
            toBytes: bytes,
            message: "\(app)'s records store is at its disk limit (\(shown)): this write was not kept, and nothing stored was lost. "
                + "Delete records, or raise the limit: gust limits \(app) --disk SIZE"
        )
    }

    public convenience init(home: GustHome, app: AppName) throws {
        try self.init(url: home.data(app).appendingPathComponent("records.sqlite"))
    }

    /// Record type names: a letter, then letters, digits and `_` (`cat`, `Review`).
    public static func validateType(_ type: String) throws(GustError) {
        guard isName(type) else {
            throw GustError("'\(type.prefix(64))' is not a record type: use a letter, then letters, digits and '_' (at most 64).")
        }
    }

    static func isName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.isASCII, first.properties.isAlphabetic, name.count <= 64 else { return false }
        return name.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) }
    }

    public func transaction<T>(_ body: () throws -> T) throws -> T { try db.transaction(body) }

    /// The types that have records, in order (for the console's record browser).
    public func types(until deadline: ContinuousClock.Instant = .now + queryLimit) throws -> [String] {
        let stopped = GustError("Listing the record types ran past \(Self.queryLimit.shortText) and was stopped.", code: 504)
        return try reader.stopping(at: deadline, with: stopped) {
            try reader.query("SELECT DISTINCT type FROM records ORDER BY type").compactMap { $0.string("type") }
        }
    }

    public func get(_ type: String, id: String) throws -> Record? {
        try db.query("SELECT * FROM records WHERE type = ? AND id = ?", [.text(type), .text(id)]).first.map(Self.record)
    }

    /// Stores a new record with fresh `_id` and timestamps; fields starting with `_` are the store's and dropped.
    public func insert(_ type: String, _ fields: Record) throws -> Record {
        try Self.validateType(type)
        let id = Self.newID()
        let now = Self.timestamp()
        let data = try Self.encodeWithinLimit(fields)
        try db.run("INSERT INTO records (type, id, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                   [.text(type), .text(id), .text(data), .text(now), .text(now)])
        return try get(type, id: id)!
    }

    /// Replaces a record's fields (the caller merged them), keeping `_id` and `_created_at`.
    public func replace(_ type: String, id: String, _ fields: Record) throws -> Record {
        try db.run("UPDATE records SET data = ?, updated_at = ? WHERE type = ? AND id = ?",
                   [.text(try Self.encodeWithinLimit(fields)), .text(Self.timestamp()), .text(type), .text(id)])
        guard db.changes > 0, let record = try get(type, id: id) else { throw Self.missing(type, id) }
        return record
    }

    public func delete(_ type: String, id: String) throws {
        try db.run("DELETE FROM records WHERE type = ? AND id = ?", [.text(type), .text(id)])
        guard db.changes > 0 else { throw Self.missing(type, id) }
    }

    public func find(_ type: String, _ query: Query) throws -> [Record] {
        try page(type, query, byteBudget: .max).records
    }

    /// The records a query selects, stepped one row at a time and stopped at
    /// `limit` or once the next record would take the page past `byteBudget`;
    /// a 504 error, with no records, if it runs past `deadline`. What is committed only.
    public func page(
        _ type: String, _ query: Query, byteBudget: Int = pageByteBudget, until deadline: ContinuousClock.Instant = .now + queryLimit
    ) throws -> Page {
        try Self.validateType(type)
        var sql = "SELECT * FROM records WHERE type = ?"
        var values: [SQLValue] = [.text(type)]
        for (field, value) in query.filters.sorted(by: { $0.key < $1.key }) {
            let column = try Self.column(field)
            if value == .null {
                sql += " AND \(column) IS NULL"
            } else if let types = Self.jsonTypes(of: value, field: field) {
                // SQLite reads `true` as 1 and a list as its text: the field's JSON type must match too.
                sql += " AND \(column) = ? AND json_type(data, '$.\(field)') IN (\(types))"
                values.append(value.sqlValue)
            } else if case .string = value {  // the store's own fields, all text
                sql += " AND \(column) = ?"
                values.append(value.sqlValue)
            } else {
                sql += " AND 0"
            }
        }
        if let order = query.order, !order.isEmpty {
            let descending = order.hasPrefix("-")
            sql += " ORDER BY \(try Self.column(descending ? String(order.dropFirst()) : order)) \(descending ? "DESC" : "ASC"), rowid"
        } else {
            sql += " ORDER BY rowid"
        }
        sql += " LIMIT \(max(0, min(query.limit, Self.maxLimit))) OFFSET \(max(0, query.offset))"
        var page = Page(texts: [])
        var bytes = 0
        try reader.stopping(at: deadline, with: Self.stopped(type, query)) {
            try reader.forEachRow(sql, values) { row in
                let stored = row.string("data") ?? "{}"
                let size = stored.utf8.count
                if !page.texts.isEmpty, size > byteBudget - bytes {
                    page.nextOffset = max(0, query.offset) + page.texts.count
                    return false
                }
                bytes += size
                page.texts.append(Self.recordText(row, stored: stored))
                return true
            }
        }
        return page
    }

    /// What a query stopped at `queryLimit` answers: why it was slow, and what makes it quicker.
    static func stopped(_ type: String, _ query: Query) -> GustError {
        var why = "it read more than could be read in that time"
        if !query.filters.isEmpty || query.order.map({ !$0.isEmpty }) == true {
            why = "`where` and `order` on fields read every \(type) record"
        } else if query.offset > 0 {
            why = "an offset of \(query.offset) steps over that many records first"
        }
        return GustError(
            "The query ran past \(queryLimit.shortText) and was stopped, with nothing returned: \(why). "
                + "Filter on _id, or split the records into more types, to keep a query within it.",
            code: 504
        )
    }

    /// The SQL for a field: the store's own columns, or a path into the JSON.
    /// Field names are checked, never interpolated raw.
    static func column(_ field: String) throws(GustError) -> String {
        switch field {
        case "_id": return "id"
        case "_created_at": return "created_at"
        case "_updated_at": return "updated_at"
        default:
            guard isName(field) else {
                throw GustError("'\(field.prefix(64))' cannot be queried: filter and order by top-level fields (letters, digits, '_').")
            }
            return "json_extract(data, '$.\(field)')"
        }
    }

    /// The `json_type` names a field must have to equal `value`, as SQL; nil for the store's own
    /// fields, which are columns and not JSON.
    static func jsonTypes(of value: JSONValue, field: String) -> String? {
        guard !field.hasPrefix("_") else { return nil }
        return switch value {
        case .bool: "'true', 'false'"
        case .integer, .number: "'integer', 'real'"
        case .string: "'text'"
        case .array: "'array'"
        case .object: "'object'"
        case .null: "'null'"
        }
    }

    static func record(_ row: Row) -> Record {
        var record = (try? JSONValue.parse(Data((row.string("data") ?? "{}").utf8)))?.objectValue ?? [:]
        record["_id"] = .string(row.string("id") ?? "")
        record["_created_at"] = .string(row.string("created_at") ?? "")
        record["_updated_at"] = .string(row.string("updated_at") ?? "")
        return record
    }

    /// The JSON stored for `fields`; a 413 error if it is over `maxRecordBytes`.
    static func encodeWithinLimit(_ fields: Record) throws(GustError) -> String {
        let data = encode(fields)
        let size = data.utf8.count
        guard size <= maxRecordBytes else {
            throw GustError(
                "The record is \(size) bytes of JSON; a record may be at most 1 MiB (\(maxRecordBytes) bytes): "
                    + "keep large content elsewhere and store a reference to it.",
                code: 413
            )
        }
        return data
    }

    static func encode(_ fields: Record) -> String {
        String(decoding: JSONValue.object(fields.filter { !$0.key.hasPrefix("_") }).encoded(), as: UTF8.self)
    }

    static func newID() -> String {
        (0..<16).map { _ in String("0123456789abcdefghijklmnopqrstuvwxyz".randomElement()!) }.joined()
    }

    static func timestamp() -> String {
        let format = ISO8601DateFormatter()
        format.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return format.string(from: Date())
    }

    static func missing(_ type: String, _ id: String) -> GustError {
        GustError.notFound("No \(type) record with _id '\(id.prefix(64))'.")
    }
}
