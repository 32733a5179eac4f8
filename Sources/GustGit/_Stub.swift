public import Foundation
public struct GitError: Error, CustomStringConvertible, Sendable { public var code: Int32; public var message: String; public var description: String { message } }
public struct ExportLimits: Sendable { public init() {} }
public struct ExportSummary: Sendable { public var files: Int; public var bytes: Int }
public final class GitRepository {
    public init(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(GitError) { fatalError() }
    public static func initBare(at path: String) throws(GitError) -> GitRepository { fatalError() }
    public func resolve(reference: String) throws(GitError) -> String? { nil }
    public func commitSummary(_ oid: String) throws(GitError) -> (message: String, time: Date) { fatalError() }
    public func export(commit oid: String, to directory: URL, limits: ExportLimits = .init()) throws(GitError) -> ExportSummary { fatalError() }
    public func tag(_ name: String, at oid: String, force: Bool) throws(GitError) {}
    public func tagNames() throws(GitError) -> [String] { [] }
}
