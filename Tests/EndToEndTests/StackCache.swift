import Foundation
import GustCore
import GustTesting
import Synchronization

/// Real stacks for the tests, built once per test process with the real `gust stacks build`
/// (mmdebstrap from Debian's archive, without npm to keep it to a minute or two each) into a cache
/// home, and hard-linked into each test's home (a stack is read-only, so sharing its files is safe).
/// `GUST_TEST_STACK_CACHE=DIR` keeps the cache in DIR across runs (for working on these tests).
enum StackCache {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private static let built = Mutex<[String: Result<Stack, Failure>]>([:])

    static var home: GustHome {
        if let kept = ProcessInfo.processInfo.environment["GUST_TEST_STACK_CACHE"], !kept.isEmpty { return GustHome(path: kept) }
        return GustHome(path: FileManager.default.temporaryDirectory.appendingPathComponent("gust-test-stacks-\(getpid())").path)
    }

    /// The stack of `suite` (its first version in the cache), built now if this process has not yet.
    static func stack(_ suite: String) throws -> Stack {
        try built.withLock { built in
            if let done = built[suite] { return try done.get() }
            let result: Result<Stack, Failure>
            do { result = .success(try build(suite)) } catch { result = .failure(Failure(description: "\(error)")) }
            built[suite] = result
            return try result.get()
        }
    }

    /// This process's cache goes when it exits (a killed one's, at the next run's first build);
    /// a cache named by GUST_TEST_STACK_CACHE stays.
    private static let removedAtExit: Void = {
        guard ProcessInfo.processInfo.environment["GUST_TEST_STACK_CACHE"]?.isEmpty ?? true else { return }
        atexit {
            let cache = FileManager.default.temporaryDirectory.appendingPathComponent("gust-test-stacks-\(getpid())")
            try? FileManager.default.removeItem(at: cache)
        }
    }()

    private static func build(_ suite: String) throws -> Stack {
        let home = home
        removeStaleCaches()
        _ = removedAtExit
        do {
            try FileManager.default.createDirectory(at: home.root, withIntermediateDirectories: true)
            let reference = try Stack.Reference(name: suite, version: 1)
            if let stack = try StackCatalog(home: home).stack(reference) { return stack }
            let result = try Command.run(GustBinaries.gust, ["stacks", "build", suite, "--without-npm", "--home", home.path], timeout: 20 * 60)
            guard result.status == 0, let stack = try StackCatalog(home: home).stack(reference) else {
                throw Failure(description: "gust stacks build \(suite) failed (\(result.status)):\n\(result.output)")
            }
            return stack
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "Cannot build the \(suite) stack: \(error)")
        }
    }

    /// Hard-links the cached stacks of `suites` into `home`, in that order (the first is the default).
    static func install(_ suites: [String], into home: GustHome) throws -> [Stack] {
        try FileManager.default.createDirectory(at: home.stacks, withIntermediateDirectories: true)
        return try suites.map { suite in
            let stack = try stack(suite)
            let copied = try Command.run("cp", ["-al", self.home.stack(stack.reference).path, home.stack(stack.reference).path])
            guard copied.status == 0 else { throw Failure(description: "cp -al: \(copied.output)") }
            return stack
        }
    }

    /// Caches of test processes that are gone without running their exit handlers.
    private static func removeStaleCaches() {
        let temporary = FileManager.default.temporaryDirectory
        for name in (try? FileManager.default.contentsOfDirectory(atPath: temporary.path)) ?? [] where name.hasPrefix("gust-test-stacks-") {
            guard let pid = Int32(name.dropFirst("gust-test-stacks-".count)), pid != getpid(), kill(pid, 0) != 0 else { continue }
            // Never through a mount: a killed run's mmdebstrap may still have proc, sys and dev mounted there.
            let cache = temporary.appendingPathComponent(name).path
            let mountinfo = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
            guard !mountinfo.contains(" \(cache)/") else { continue }
            try? FileManager.default.removeItem(atPath: cache)
        }
    }
}
