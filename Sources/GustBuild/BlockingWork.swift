import Foundation

/// Work that blocks its thread (a sandbox's uid map and hand-back, packing an
/// artifact, removing a build's tree), run on a thread of its own: gustd runs
/// builds, and its tasks run on its event loops, which must not wait on a
/// `waitpid` or a tree walk. A build does a handful of these, so a thread
/// each is cheap; the caller awaits the result and nothing outlives it.
package enum BlockingWork {
    package static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }
}
