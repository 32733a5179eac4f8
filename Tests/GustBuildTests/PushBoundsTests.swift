import Foundation
import GustCore
import GustTesting
import Testing

@testable import GustBuild

/// What one push may leave in its app's repository (pre-receive's bounds).
@Suite struct PushBoundsTests {
    static let app = try! AppName("cats")

    func updates(_ count: Int) -> [RefUpdate] {
        (0..<count).map { RefUpdate(old: RefUpdate.zero, new: String(repeating: "a", count: 40), ref: "refs/heads/b\($0)") }
    }

    @Test func aPushOfMoreRefsThanTheBoundIsRefused() throws {
        try PushBounds.checkRefCount(updates(PushBounds.maxRefUpdates))
        let error = #expect(throws: GustError.self) { try PushBounds.checkRefCount(updates(PushBounds.maxRefUpdates + 1)) }
        #expect(error?.message.contains("at most \(PushBounds.maxRefUpdates) go in one push") == true)
    }

    /// A repository over its limit refuses what brings objects; what brings none (a deletion)
    /// passes, so a repository over a lowered limit can still be tidied.
    @Test(.scratchDirectory) func aPushBringingObjectsOverTheLimitIsRefusedAndOneBringingNoneIsNot() throws {
        let repository = ScratchDirectory.current.appendingPathComponent("cats.git")
        let quarantine = repository.appendingPathComponent("objects/tmp_objdir-incoming-x")
        try FileManager.default.createDirectory(at: quarantine.appendingPathComponent("pack"), withIntermediateDirectories: true)
        try Data(repeating: 1, count: 3 << 20).write(to: repository.appendingPathComponent("objects/old.pack"))

        try PushBounds.checkSize(of: repository, quarantine: quarantine.path, limit: 1 << 20, app: Self.app)
        try PushBounds.checkSize(of: repository, quarantine: nil, limit: 1 << 20, app: Self.app)

        try Data(repeating: 2, count: 1024).write(to: quarantine.appendingPathComponent("pack/new.pack"))
        try PushBounds.checkSize(of: repository, quarantine: quarantine.path, limit: 8 << 20, app: Self.app)
        try PushBounds.checkSize(of: repository, quarantine: quarantine.path, limit: nil, app: Self.app)
        let error = #expect(throws: GustError.self) {
            try PushBounds.checkSize(of: repository, quarantine: quarantine.path, limit: 1 << 20, app: Self.app)
        }
        #expect(error?.message.contains("over its disk limit (1 MB)") == true, "\(String(describing: error))")
        #expect(error?.hint?.contains("gust limits cats --disk") == true)
    }
}
