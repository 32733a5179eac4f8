import Foundation
import GustCore
import Synchronization
import Testing

@testable import GustDaemon

/// Starts of the same release at once unpack it once; a failure is everyone's, and not kept.
struct ReleaseUnpacksTests {
    let key = ReleaseUnpacks.Key(app: try! AppName("cats"), version: 6)
    let directory = URL(fileURLWithPath: "/gust/releases/cats/v6")

    @Test func fourStartsAtOnceUnpackOnceAndAllGetTheDirectory() async throws {
        let unpacks = ReleaseUnpacks()
        let unpack = GatedUnpack(result: .success(directory))
        let directories = try await withThrowingTaskGroup(of: URL.self) { group in
            group.addTask { try await unpacks.directory(of: key, unpack: { try await unpack.run() }) }
            await until { unpack.runs == 1 }  // the first start unpacks, held at the gate
            for _ in 0..<3 { group.addTask { try await unpacks.directory(of: key, unpack: { try await unpack.run() }) } }
            await until { unpacks.waiting(for: key) == 3 }
            unpack.open()
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(directories == Array(repeating: directory, count: 4))
        #expect(unpack.runs == 1)
        #expect(unpacks.waiting(for: key) == 0)
    }

    @Test func aFailedUnpackIsEveryWaitersErrorAndTheNextStartTriesAgain() async throws {
        let unpacks = ReleaseUnpacks()
        let unpack = GatedUnpack(result: .failure(GustError("Cannot unpack v6 of cats: disk full")))
        let outcomes = await withTaskGroup(of: String.self) { group in
            for index in 0..<3 {
                group.addTask {
                    do { return try await unpacks.directory(of: key, unpack: { try await unpack.run() }).path } catch { return "\(error)" }
                }
                if index == 0 { await until { unpack.runs == 1 } }
            }
            await until { unpacks.waiting(for: key) == 2 }
            unpack.open()
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes == Array(repeating: "Cannot unpack v6 of cats: disk full", count: 3))
        #expect(unpack.runs == 1)

        let other = ReleaseUnpacks.Key(app: key.app, version: 7)
        #expect(try await unpacks.directory(of: other) { directory } == directory)  // another release: its own unpack
        unpack.succeedNextTime(with: directory)
        #expect(try await unpacks.directory(of: key, unpack: { try await unpack.run() }) == directory)
        #expect(unpack.runs == 2)
    }

    /// A start given up while it waits (its deploy cancelled) leaves at once, before the unpack
    /// ends; the unpack goes on, and the start that runs it and the other waiter get the directory.
    @Test func aCancelledWaiterLeavesAtOnceAndTheUnpackGoesOnForTheOthers() async throws {
        let unpacks = ReleaseUnpacks()
        let unpack = GatedUnpack(result: .success(directory))
        let left = Left()
        let key = key
        let directories = try await withThrowingTaskGroup(of: URL.self) { group in
            group.addTask { try await unpacks.directory(of: key, unpack: { try await unpack.run() }) }
            await until { unpack.runs == 1 }
            group.addTask { try await unpacks.directory(of: key, unpack: { try await unpack.run() }) }
            let givenUp = Task {
                defer { left.value.store(true, ordering: .releasing) }
                return try await unpacks.directory(of: key, unpack: { try await unpack.run() })
            }
            await until { unpacks.waiting(for: key) == 2 }
            givenUp.cancel()
            await until { left.value.load(ordering: .acquiring) }  // the gate is still shut
            #expect(unpacks.waiting(for: key) == 1)
            unpack.open()
            let outcome = await givenUp.result
            #expect(throws: CancellationError.self) { try outcome.get() }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(directories == [directory, directory])
        #expect(unpack.runs == 1)
    }

    /// Lets the other tasks run until `condition` holds (bounded: a broken single-flight fails the test, not hangs it).
    private func until(_ condition: () -> Bool) async {
        for _ in 0..<100_000 where !condition() { await Task.yield() }
        #expect(condition())
    }
}

/// Set when the start given up has returned.
private final class Left: Sendable {
    let value = Atomic(false)
}

/// An unpack that counts its runs and holds them at a gate until `open()`.
private final class GatedUnpack: Sendable {
    private struct State {
        var runs = 0
        var result: Result<URL, any Error>
        var gates: [CheckedContinuation<Void, Never>] = []
        var opened = false
    }

    private let state: Mutex<State>

    init(result: Result<URL, any Error>) { state = Mutex(State(result: result)) }

    var runs: Int { state.withLock { $0.runs } }

    @Sendable func run() async throws -> URL {
        state.withLock { $0.runs += 1 }
        await withCheckedContinuation { continuation in
            let opened = state.withLock { state in
                if !state.opened { state.gates.append(continuation) }
                return state.opened
            }
            if opened { continuation.resume() }
        }
        return try state.withLock { $0.result }.get()
    }

    func open() {
        let gates = state.withLock { state in
            state.opened = true
            defer { state.gates = [] }
            return state.gates
        }
        for gate in gates { gate.resume() }
    }

    func succeedNextTime(with directory: URL) { state.withLock { $0.result = .success(directory) } }
}
