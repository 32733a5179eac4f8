import Foundation

/// Which releases run on which stack: `gust stacks list` counts them, and `gust stacks remove`
/// refuses a stack a kept release (one whose artifact is still there, so it can go live again by
/// rollback) runs on.
extension Store {
    /// For each stack reference ("bookworm@1"), the releases recorded on it that still have their
    /// artifact, as "APP vN", every app's.
    public func stackUsers() throws -> [String: [String]] {
        var users: [String: [String]] = [:]
        for app in try apps() {
            for release in try releases(app.name).reversed() where release.status != .failed {
                guard let stack = release.stack, ReleaseRetention.hasArtifact(release, home: home) else { continue }
                users[stack, default: []].append("\(app.name) v\(release.version)")
            }
        }
        return users
    }
}
