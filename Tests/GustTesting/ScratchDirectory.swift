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
        defer { try? FileManager.default.removeItem(at: dir) }
        try await ScratchDirectory.$current.withValue(dir.resolvingSymlinksInPath()) {
            try await function()
        }
    }
}

extension Trait where Self == ScratchDirectory {
    public static var scratchDirectory: ScratchDirectory { ScratchDirectory() }
}
