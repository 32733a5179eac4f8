public import Foundation

public struct App: Sendable, Codable, Equatable {
    public var name: AppName
    public var createdAt: Date
    /// The release the router should serve: desired state, which gustd reconciles to.
    public var liveVersion: Int?
    public var isPrivate: Bool
}

public struct Release: Sendable, Codable, Equatable {
    public enum Status: String, Sendable, Codable {
        case built, failed
        /// Derived: the release the app's `liveVersion` points at.
        case live
    }

    public var app: AppName
    public var version: Int
    public var status: Status
    public var commit: String?
    public var buildpack: String?
    /// SHA-256 of the artifact's bytes; names the file under `artifacts/`.
    public var artifact: String?
    public var artifactSize: Int?
    /// The command that starts an instance, from the buildpack's `bin/release`.
    public var process: String?
    public var buildSeconds: Double?
    public var createdAt: Date
    /// "Deploy 3f2c1a9", "Rollback to v5", "Set FOO".
    public var description: String
    public var rollbackOf: Int?
    public var config: [String: String]
    /// Config vars whose values are secret: shown masked, everywhere.
    public var secretNames: [String]
    public var error: String?
    public var log: String
    /// The stack the release was built on and runs on (`Stack.reference`, "bookworm@1"); nil for a
    /// release built on the host's own system (before stacks, or on a server without any).
    public var stack: String?
    /// Whether gustd binds the socket of each instance and hands it over (`GUST_LISTEN_FD`), so that
    /// the instance's socket directory is read-only to the app: every release built since. One recorded
    /// before runs as it did (its runtime binds `GUST_SOCKET` in a writable directory) until pushed again;
    /// a release's slug cannot choose this, the store does.
    public var passesListener: Bool

    /// The config as it may be shown to a person.
    public var displayConfig: [String: String] {
        config.reduce(into: [:]) { $0[$1.key] = secretNames.contains($1.key) ? ConfigVar.mask : $1.value }
    }

    public var shortCommit: String? { commit.map { String($0.prefix(7)) } }
}

/// What a finished build hands to the store; the store allocates the version.
public struct NewRelease: Sendable {
    public var status: Release.Status
    public var commit: String?
    public var buildpack: String?
    public var artifact: String?
    public var artifactSize: Int?
    public var process: String?
    public var buildSeconds: Double?
    public var description: String
    public var rollbackOf: Int?
    public var config: [String: String]
    public var secretNames: [String]
    public var error: String?
    public var log: String
    public var stack: String?
    public var passesListener: Bool

    public init(
        status: Release.Status, commit: String? = nil, buildpack: String? = nil, artifact: String? = nil,
        artifactSize: Int? = nil, process: String? = nil, buildSeconds: Double? = nil, description: String,
        rollbackOf: Int? = nil, config: [String: String] = [:], secretNames: [String] = [], error: String? = nil,
        log: String = "", stack: String? = nil, passesListener: Bool = true
    ) {
        self.stack = stack
        self.passesListener = passesListener
        self.status = status
        self.commit = commit
        self.buildpack = buildpack
        self.artifact = artifact
        self.artifactSize = artifactSize
        self.process = process
        self.buildSeconds = buildSeconds
        self.description = description
        self.rollbackOf = rollbackOf
        self.config = config
        self.secretNames = secretNames
        self.error = error
        self.log = log
    }
}
