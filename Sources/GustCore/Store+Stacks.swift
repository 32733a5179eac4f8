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

/// A stack that kept releases of a home run on and the home does not have: a restored home (a
/// backup leaves stacks out: they are hundreds of MB that `gust stacks build` makes again) or one
/// whose stack was deleted by hand. `gust restore` and gustd's start name them with `command`.
public struct MissingStack: Sendable, Equatable {
    public var reference: Stack.Reference
    /// "APP vN", oldest first per app.
    public var releases: [String]

    public init(reference: Stack.Reference, releases: [String]) {
        self.reference = reference
        self.releases = releases
    }

    /// The build that makes it: the same name and version (a stack named after its suite needs no --suite).
    public var command: String {
        let suite = ["bookworm", "trixie"].contains(reference.name) ? "" : " --suite SUITE"
        return "gust stacks build \(reference.name)\(suite) --version \(reference.version)"
    }

    /// "bookworm@1 (cats v1, cats v3): gust stacks build bookworm --version 1"
    public var line: String { "\(reference) (\(releases.joined(separator: ", "))): \(command)" }
}

extension Store {
    /// The stacks kept releases run on that this home lacks, by reference.
    public func missingStacks() throws -> [MissingStack] {
        let catalog = StackCatalog(home: home)
        return try stackUsers().compactMap { recorded, releases -> MissingStack? in
            guard let reference = try? Stack.Reference(parsing: recorded), (try? catalog.stack(reference)) == nil else { return nil }
            return MissingStack(reference: reference, releases: releases)
        }.sorted { $0.reference < $1.reference }
    }
}
