// Temporary: the router branch brings the real AdminClient.
public struct AdminClient: Sendable {
    public var home: GustHome
    public init(home: GustHome) { self.home = home }
    public func deploy(app: AppName, version: Int, progress: (String) -> Void) throws {
        throw GustError("gustd is not running for GUST_HOME=\(home.path); start it with `gustd --home \(home.path)`.", code: 503)
    }
}
