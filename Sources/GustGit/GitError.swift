import CGit2

/// A libgit2 failure, or a tree Gust refuses to deploy, in words a pusher can act on.
public struct GitError: Error, CustomStringConvertible, Sendable {
    /// libgit2's return code, or 0 for a refusal of Gust's own.
    public var code: Int32
    public var message: String

    public init(code: Int32 = 0, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// Turns a libgit2 return code into an error at once, on the thread that
    /// made the call, while `git_error_last()` still describes it.
    static func check(_ code: Int32, _ what: @autoclosure () -> String) throws(GitError) {
        guard code < 0 else { return }
        let detail = git_error_last().map { String(cString: $0.pointee.message) } ?? "error \(code)"
        throw GitError(code: code, "\(what()): \(detail)")
    }
}

/// libgit2 must be initialised once per process before any other call.
enum Libgit2 {
    static let initialised: Bool = {
        git_libgit2_init()
        return true
    }()
}
