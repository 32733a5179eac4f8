/// The body of gustd's `POST /v1/deploy`, shared by gustd and `AdminClient`.
///
/// Why phases: a push's release may serve only once git has accepted the
/// push, so pre-receive asks for `warm` and post-receive for `switch`; a
/// rollback or config release has no ref to wait for and asks for `full`.
public struct AdminDeployRequest: Codable, Sendable, Equatable {
    public enum Phase: String, Codable, Sendable {
        /// Start, read the manifest, check health; do not serve.
        case warm
        /// Serve the release (the warmed instance, or a new one).
        case `switch`
        /// Both at once.
        case full
    }

    public var app: String
    public var version: Int
    /// Absent means `full` (what clients before the phases sent).
    public var phase: Phase?

    public init(app: String, version: Int, phase: Phase) {
        self.app = app
        self.version = version
        self.phase = phase
    }
}
