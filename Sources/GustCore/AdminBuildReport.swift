import Foundation

/// The body of gustd's `POST /v1/builds`: a push's build as gust-receive saw
/// it, so that gustd's metrics count builds, which run in the hook, not in gustd.
public struct AdminBuildReport: Codable, Sendable, Equatable {
    public var app: String
    public var succeeded: Bool
    public var seconds: Double

    public init(app: String, succeeded: Bool, seconds: Double) {
        self.app = app
        self.succeeded = succeeded
        self.seconds = seconds
    }
}

extension AdminClient {
    /// Tells gustd how a build went. Best effort: a gustd that does not answer
    /// within a few seconds loses the count, never the push.
    public func reportBuild(_ report: AdminBuildReport) {
        var quick = self
        quick.readTimeout = min(readTimeout, .seconds(5))
        guard let body = try? JSONEncoder().encode(report) else { return }
        try? quick.exchange("POST", "/v1/builds", body: body) { _ in }
    }
}
