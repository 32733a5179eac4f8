import Foundation

/// What gustd serves for one app, from `GET /v1/status`: the CLI shows it
/// beside the store's record (a live release that cannot start is `crashing`).
public struct ServedApp: Sendable, Equatable {
    public var app: String
    public var version: Int
    /// `running`, `starting` or `crashing`.
    public var state: String
    /// Why its last start failed, while it is crashing.
    public var error: String?
}

extension AdminClient {
    /// Every app gustd serves, by name.
    public func status() throws -> [String: ServedApp] {
        var body = ""
        try exchange("GET", "/v1/status", body: Data()) { body += $0 }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
            let apps = object["apps"] as? [[String: Any]]
        else { throw GustError("gustd answered its status with something that is not JSON.", code: 502) }
        var served: [String: ServedApp] = [:]
        for entry in apps {
            guard let app = entry["app"] as? String, let version = entry["version"] as? Int else { continue }
            served[app] = ServedApp(app: app, version: version, state: entry["state"] as? String ?? "running", error: entry["error"] as? String)
        }
        return served
    }
}
