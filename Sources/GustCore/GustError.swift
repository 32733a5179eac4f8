/// An error a person can act on: what happened, and what to do next.
///
/// Every user-facing failure in Gust is one of these. `code` follows HTTP
/// status semantics so the router can render it as `{"code": N, "error": "…"}`.
public struct GustError: Error, CustomStringConvertible, Sendable, Equatable {
    public var code: Int
    public var message: String
    /// What the reader should do about it, if there is something to say.
    public var hint: String?

    public init(_ message: String, code: Int = 400, hint: String? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
    }

    public var description: String {
        guard let hint else { return message }
        return "\(message)\n\(hint)"
    }

    public static func notFound(_ message: String, hint: String? = nil) -> GustError {
        GustError(message, code: 404, hint: hint)
    }

    public static func `internal`(_ message: String) -> GustError {
        GustError(message, code: 500)
    }

    /// A write refused because the disk is full (HTTP 507, Insufficient Storage).
    public static func diskFull(_ what: String) -> GustError {
        GustError(
            "\(what): the disk is full (no space left on device); nothing of it was kept.", code: 507,
            hint: "Free space on the disk holding GUST_HOME (old logs, unused artifacts), then try again."
        )
    }
}
