import Foundation
import GustCore
import GustTesting
import Testing

/// `gust releases prune` frees old artifacts but never what serves or what
/// `gust rollback` would go back to, nor an artifact a kept release shares.
@Suite struct ReleaseRetentionTests {
    /// An app with releases v1…vN, each its own artifact file (a failed one has none), `live` live.
    func app(_ store: Store, _ name: String, statuses: [Release.Status], live: Int, sharing: [Int: Int] = [:]) throws -> AppName {
        let app = try AppName(name)
        _ = try store.createApp(app)
        for (index, status) in statuses.enumerated() {
            let version = index + 1
            guard status != .failed else {
                try store.recordRelease(app, NewRelease(status: .failed, description: "v\(version)", error: "boom"))
                continue
            }
            let digest = "\(name)-\(sharing[version] ?? version)"
            let file = store.home.artifact(digest: digest, fileExtension: "tar.zst")
            if !FileManager.default.fileExists(atPath: file.path) { try Data(repeating: 7, count: 100).write(to: file) }
            try store.recordRelease(app, NewRelease(status: .built, artifact: digest, artifactSize: 100, description: "v\(version)"))
        }
        try store.setLive(app, version: live)
        return app
    }

    func artifactExists(_ store: Store, _ digest: String) -> Bool {
        FileManager.default.fileExists(atPath: store.home.artifact(digest: digest, fileExtension: "tar.zst").path)
    }

    @Test(.scratchDirectory) func keepZeroStillKeepsTheLiveReleaseAndTheRollbackTarget() throws {
        let store = try Store(home: GustHome(path: ScratchDirectory.current.path))
        // v4 failed, so `gust rollback` from v5 goes to v3.
        let cats = try app(store, "cats", statuses: [.built, .built, .built, .failed, .built], live: 5)
        let (plan, freed) = try store.pruneArtifacts(cats, keep: 0)
        #expect(plan.kept == [5, 3])
        #expect(plan.pruned == [2, 1])
        #expect(freed == 200)
        #expect(artifactExists(store, "cats-5") && artifactExists(store, "cats-3"))
        #expect(!artifactExists(store, "cats-2") && !artifactExists(store, "cats-1"))
        // Rows and logs stay; a second prune finds nothing more to free.
        #expect(try store.releases(cats).count == 5)
        #expect(try store.pruneArtifacts(cats, keep: 0).freed == 0)
    }

    /// An artifact is shared by every app whose build packs the same slug, and another app's build
    /// records its release only after packing: a prune spares an artifact packed again since the
    /// release it prunes was recorded, for a day, so that the other build's deploy finds it.
    @Test(.scratchDirectory) func anArtifactPackedAgainSinceItsReleaseIsSparedForADay() throws {
        let store = try Store(home: GustHome(path: ScratchDirectory.current.path))
        let cats = try app(store, "cats", statuses: [.built, .built, .built, .built], live: 4)
        // Another app's build packs the slug of cats' v1 and v2 and has not yet recorded its release.
        let packed = Date().addingTimeInterval(1)
        for digest in ["cats-1", "cats-2"] {
            try FileManager.default.setAttributes(
                [.modificationDate: packed], ofItemAtPath: store.home.artifact(digest: digest, fileExtension: "tar.zst").path)
        }
        let (plan, freed) = try store.pruneArtifacts(cats, keep: 0)
        #expect(plan.pruned == [2, 1])
        #expect(freed == 0)
        #expect(artifactExists(store, "cats-1") && artifactExists(store, "cats-2"))
        // A build that never recorded its release holds its mark for a day, no longer.
        #expect(try store.pruneArtifacts(cats, keep: 0, now: packed.addingTimeInterval(2 * 86_400)).freed == 200)
        #expect(!artifactExists(store, "cats-1") && !artifactExists(store, "cats-2"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.home.artifacts.path).sorted() == ["cats-3.tar.zst", "cats-4.tar.zst"])
    }

    /// What a pack or a prune cut short left goes with the next prune once a day old; a pack in
    /// progress (its file written now) stays.
    @Test(.scratchDirectory) func leftoversOfPacksAndPrunesCutShortGoAfterADay() throws {
        let store = try Store(home: GustHome(path: ScratchDirectory.current.path))
        let cats = try app(store, "cats", statuses: [.built], live: 1)
        let artifacts = store.home.artifacts
        let old = Date().addingTimeInterval(-2 * 86_400)
        for name in [".pack-old.tmp", ".prune-old.tmp", ".pack-new.tmp", "keep.tmp"] {
            try Data("x".utf8).write(to: artifacts.appendingPathComponent(name))
            if name.contains("old") || name == "keep.tmp" {
                try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: artifacts.appendingPathComponent(name).path)
            }
        }
        _ = try store.pruneArtifacts(cats, keep: 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: artifacts.path).sorted() == [".pack-new.tmp", "cats-1.tar.zst", "keep.tmp"])
    }

    @Test(.scratchDirectory) func releasesNewerThanTheLiveOneAndTheNewestNAreKept() throws {
        let store = try Store(home: GustHome(path: ScratchDirectory.current.path))
        // Rolled back to v2 (as v4, sharing v2's artifact); v5 is a push not yet switched to.
        let cats = try app(store, "cats", statuses: [.built, .built, .built, .built, .built], live: 4, sharing: [4: 2])
        let (plan, _) = try store.pruneArtifacts(cats, keep: 1)
        #expect(plan.kept == [5, 4, 3])
        #expect(plan.pruned == [2, 1])
        // v2's artifact is the live release's too: it stays.
        #expect(artifactExists(store, "cats-2"))
        #expect(!artifactExists(store, "cats-1"))
        #expect(artifactExists(store, "cats-5") && artifactExists(store, "cats-3"))
    }

    @Test func planOfAnAppWithNothingLive() throws {
        #expect(ReleaseRetention.plan([], live: nil, keep: 3) == .init(kept: [], pruned: []))
    }
}
