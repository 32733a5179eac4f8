import Foundation

extension AdminClient {
    /// Tells gustd the apps' domains changed (`gust domains add|remove|renew`): it routes and certifies them at once.
    public func refreshDomains() throws {
        try exchange("POST", "/v1/domains/refresh", body: Data()) { _ in }
    }
}
