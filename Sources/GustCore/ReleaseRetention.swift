public import Foundation

/// Which releases of an app keep their artifacts when old ones are pruned
/// (`gust releases prune`): the `keep` newest that built, and always the live
/// release, the one `gust rollback` would go back to, and any newer than the
/// live one (a push being deployed, or accepted and not yet switched to).
/// A pruned release keeps its row and build log; only its artifact (unless a
/// kept release shares it) and its unpacked directory go.
public enum ReleaseRetention {
    public struct Plan: Sendable, Equatable {
        /// Versions whose artifacts stay.
        public var kept: [Int]
        /// Versions that built and lose their artifacts, newest first.
        public var pruned: [Int]

        public init(kept: [Int], pruned: [Int]) {
            self.kept = kept
            self.pruned = pruned
        }
    }

    /// `releases` in any order; failed releases have no artifact and are neither.
    public static func plan(_ releases: [Release], live: Int?, keep: Int) -> Plan {
        let built = releases.filter { $0.status != .failed }.sorted { $0.version > $1.version }
        var kept = Set(built.prefix(max(keep, 0)).map(\.version))
        if let live {
            kept.insert(live)
            kept.formUnion(built.filter { $0.version > live }.map(\.version))
            // `gust rollback APP` goes to the newest release before the live one that did not fail.
            if let target = built.first(where: { $0.version < live }) { kept.insert(target.version) }
        }
        return Plan(
            kept: built.map(\.version).filter(kept.contains),
            pruned: built.map(\.version).filter { !kept.contains($0) }
        )
    }

    /// Whether the release's artifact is still on disk (false once pruned).
    public static func hasArtifact(_ release: Release, home: GustHome) -> Bool {
        guard let digest = release.artifact else { return false }
        return FileManager.default.fileExists(atPath: home.artifact(digest: digest, fileExtension: "tar.zst").path)
    }
}

extension Store {
    /// Prunes the app's artifacts as `ReleaseRetention.plan` says: an artifact
    /// goes only if no kept release of the app, and no release of another app,
    /// uses it, and no build has packed it since the app's release recorded it
    /// (`ArtifactFile`). Returns the plan and the bytes freed. Call with the app's
    /// deploy lock held, so no push or rollback picks a release meanwhile.
    public func pruneArtifacts(_ app: AppName, keep: Int, now: Date = Date()) throws -> (plan: ReleaseRetention.Plan, freed: Int) {
        let releases = try self.releases(app)
        let plan = ReleaseRetention.plan(releases, live: try requireApp(app).liveVersion, keep: keep)
        let byVersion = Dictionary(uniqueKeysWithValues: releases.map { ($0.version, $0) })
        let needed = Set(plan.kept.compactMap { byVersion[$0]?.artifact })
        var freed = 0
        for digest in Set(plan.pruned.compactMap { byVersion[$0]?.artifact }) where !needed.contains(digest) {
            guard try !isArtifactShared(digest, outside: app) else { continue }
            freed += try removeArtifact(digest, of: releases, now: now) ?? 0
        }
        ArtifactFile.sweepLeftovers(in: home.artifacts, now: now)
        return (plan, freed)
    }

    /// Removes `digest`'s artifact, which an app's `releases` used, unless a build has packed it
    /// since the newest of them that uses it was recorded (`ArtifactFile`). The bytes freed; nil
    /// when it was spared or not there.
    public func removeArtifact(_ digest: String, of releases: [Release], now: Date = Date()) throws -> Int? {
        let recorded = releases.filter { $0.artifact == digest }.map(\.createdAt).max() ?? .distantPast
        return try ArtifactFile.remove(home.artifact(digest: digest, fileExtension: "tar.zst"), unlessPackedAfter: recorded, now: now)
    }
}
