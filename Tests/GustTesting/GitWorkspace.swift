public import Foundation

/// A working copy made with the real git CLI, to push from.
public struct GitWorkspace: Sendable {
    public let directory: URL

    /// Deterministic identity and no system or user config, so tests see the same git everywhere.
    public static let environment: [String: String] = [
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": "Gust Test", "GIT_AUTHOR_EMAIL": "test@gust.invalid",
        "GIT_COMMITTER_NAME": "Gust Test", "GIT_COMMITTER_EMAIL": "test@gust.invalid",
        "GIT_TERMINAL_PROMPT": "0",
    ]

    /// `git init -b main` in `directory`, optionally filled with a copy of `template`.
    public init(at directory: URL, copying template: URL? = nil) throws {
        self.directory = directory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        if let template {
            for item in try FileManager.default.contentsOfDirectory(atPath: template.path) {
                try FileManager.default.copyItem(at: template.appendingPathComponent(item), to: directory.appendingPathComponent(item))
            }
        }
        try git("init", "-q", "-b", "main")
    }

    @discardableResult
    public func git(_ arguments: String..., environment: [String: String] = [:], check: Bool = true) throws -> CommandResult {
        let result = try Command.run("git", arguments, in: directory, environment: Self.environment.merging(environment) { $1 })
        if check && result.status != 0 {
            throw GitFailure(arguments: arguments, result: result)
        }
        return result
    }

    public func write(_ path: String, _ contents: String, executable: Bool = false) throws {
        let url = directory.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try contents.write(to: url, atomically: true, encoding: .utf8)
        if executable { try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path) }
    }

    /// `git add -A && git commit`, returning the new commit id.
    @discardableResult
    public func commit(_ message: String) throws -> String {
        try git("add", "-A")
        try git("commit", "-q", "--allow-empty", "-m", message)
        return try git("rev-parse", "HEAD").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `git push REMOTE REFSPEC`; the result's stderr holds the `remote:` lines.
    public func push(to remote: String, _ refspec: String = "main", environment: [String: String] = [:]) throws -> CommandResult {
        try git("push", remote, refspec, environment: environment, check: false)
    }
}

public struct GitFailure: Error, CustomStringConvertible {
    public var arguments: [String]
    public var result: CommandResult
    public init(arguments: [String], result: CommandResult) {
        self.arguments = arguments
        self.result = result
    }
    public var description: String { "git \(arguments.joined(separator: " ")) failed (\(result.status)): \(result.output)" }
}
