/// A test's own failure, said in words: a tool or server it starts did not (pebble, openssl,
/// gustd's HTTPS port), or a wait ran out. Shared by the end-to-end suites.
public struct HTTPClientErrorText: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
