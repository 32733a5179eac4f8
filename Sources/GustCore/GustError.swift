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
}
