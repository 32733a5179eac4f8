import Foundation

/// The body of gustd's `POST /v1/build`, shared by gustd and `AdminClient`.
///
/// Why gustd builds: a push's detect, compile and release run in the app's
/// sandbox and in a cgroup of gustd's tree, started by gustd, not by the hook
/// (which runs as the git side, in sshd's session). The hook keeps what reads
/// git's quarantine: it exports the pushed tree into `workspace` (under
/// `GUST_HOME/tmp`), and relays the build's lines as `remote: …`.
public struct AdminBuildRequest: Codable, Sendable, Equatable {
    public var app: String
    public var commit: String
    /// `GUST_HOME/tmp/build-APP-…`, with the pushed tree in `app/`; gustd removes it when the build ends.
    public var workspace: String
    /// The commit's time: the artifact's files are dated no later (reproducible digests).
    public var commitTime: Int?
    /// The hook's installation's `buildpacks/` (GUST_SHARE, or beside gust-receive).
    public var buildpacks: String
    // The build's time and output limits are gustd's own (`gustd --build-timeout` …), never the
    // hook's: nothing of a push's environment may raise them.

    public init(app: String, commit: String, workspace: String, commitTime: Int?, buildpacks: String) {
        self.app = app
        self.commit = commit
        self.workspace = workspace
        self.commitTime = commitTime
        self.buildpacks = buildpacks
    }
}

/// What a build made, for the release row the hook records.
public struct AdminBuildResult: Codable, Sendable, Equatable {
    public var buildpack: String
    public var process: String
    /// The artifact's SHA-256 and size (`GUST_HOME/artifacts/DIGEST.tar.zst`).
    public var artifact: String
    public var artifactSize: Int
    /// The stack it was built on (`bookworm@1`), nil: the host's system.
    public var stack: String?

    public init(buildpack: String, process: String, artifact: String, artifactSize: Int, stack: String?) {
        self.buildpack = buildpack
        self.process = process
        self.artifact = artifact
        self.artifactSize = artifactSize
        self.stack = stack
    }
}

/// One line of `POST /v1/build`'s newline-delimited JSON answer: a line of the build's output
/// (formatted as the pusher sees it), a heartbeat (every second, so that gustd notices a hook
/// that went away and stops the build), then the result or the error.
public struct AdminBuildEvent: Codable, Sendable, Equatable {
    public var line: String?
    public var heartbeat: Bool?
    public var built: AdminBuildResult?
    public var error: String?
    public var code: Int?

    public init(line: String? = nil, heartbeat: Bool? = nil, built: AdminBuildResult? = nil, error: String? = nil, code: Int? = nil) {
        self.line = line
        self.heartbeat = heartbeat
        self.built = built
        self.error = error
        self.code = code
    }
}

extension AdminClient {
    /// Asks gustd to build the tree exported into `request.workspace`, calling `line` with each line
    /// of the build's output as it comes. Closing the connection (this process ending) stops the build.
    public func build(_ request: AdminBuildRequest, line: (String) -> Void) throws -> AdminBuildResult {
        let body = try JSONEncoder().encode(request)
        var outcome: Result<AdminBuildResult, GustError>?
        let decoder = JSONDecoder()
        try exchange("POST", "/v1/build", body: body) { text in
            guard let event = try? decoder.decode(AdminBuildEvent.self, from: Data(text.utf8)) else { return }
            if let text = event.line {
                line(text)
            } else if let built = event.built {
                outcome = .success(built)
            } else if let message = event.error {
                outcome = .failure(GustError(message, code: event.code ?? 500))
            }
        }
        switch outcome {
        case .success(let built): return built
        case .failure(let error): throw error
        case nil: throw GustError("gustd stopped answering during the build; check its log.", code: 502)
        }
    }
}
