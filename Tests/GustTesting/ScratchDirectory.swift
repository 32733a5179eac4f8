public import Foundation
public import Testing

/// A fresh directory for one test, removed afterwards whatever happens.
///
/// Use as a trait: `@Test(.scratchDirectory) func …` and read
/// `ScratchDirectory.current` inside the test.
public struct ScratchDirectory: TestTrait, TestScoping {
    /// Outside a test with the trait, a path nothing can be made under (not even by root), so that
    /// such a test fails at its first write instead of sharing one directory with every other.
    @TaskLocal public static var current: URL = URL(fileURLWithPath: "/proc/gust-test-without-a-scratch-directory")

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("gust-test-\(UUID().uuidString.prefix(8).lowercased())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { Self.remove(dir) }
        try await ScratchDirectory.$current.withValue(dir.resolvingSymlinksInPath()) {
            try await function()
        }
    }

    /// Removes the tree, trying again for up to 2 s: a process that is still ending (an instance a
    /// stopped gustd signalled, a sandbox helper) can add a file while the tree is walked, and the
    /// walk then stops half-way and left its rest in /tmp. What cannot be removed is named.
    static func remove(_ dir: URL) {
        for attempt in 1...20 {
            guard FileManager.default.fileExists(atPath: dir.path) else { return }
            do {
                try FileManager.default.removeItem(at: dir)
                return
            } catch {
                if attempt == 20 { print("warning: the scratch directory \(dir.path) is left: \(error)") }
                usleep(100_000)
            }
        }
    }
}

extension Trait where Self == ScratchDirectory {
    public static var scratchDirectory: ScratchDirectory { ScratchDirectory() }
}
