import Foundation
import GustCore
import GustTesting
import Synchronization
import Testing

/// The hook orchestration, with hooks written as Swift closures standing in for
/// an app's functions (the end-to-end tests run them in real runtimes).
@Suite struct RecordServiceTests {
    final class Calls: Sendable {
        let events = Mutex<[String]>([])
        func note(_ event: String) { events.withLock { $0.append(event) } }
        var all: [String] { events.withLock { $0 } }
    }

    func service(hooks: Set<String>, calls: Calls, failures: Calls = Calls(), _ body: @escaping RecordHookCall) throws -> (RecordService, RecordStore) {
        let url = ScratchDirectory.current.appendingPathComponent("records.sqlite")
        let service = RecordService(store: try RecordStore(url: url), hooks: { hooks }, call: { event, type, record, original, context, timeout in
            calls.note("\(event.rawValue) \(type)")
            return try await body(event, type, record, original, context, timeout)
        }, onAfterHookFailure: { hook, message in failures.note("\(hook): \(message)") })
        // The test reads what was committed through a connection of its own.
        return (service, try RecordStore(url: url))
    }

    struct Rejected: Error {}

    @Test(.scratchDirectory) func aRejectingBeforeHookStoresNothing() async throws {
        let calls = Calls()
        let (service, store) = try service(hooks: ["before_save cat"], calls: calls) { _, _, record, _, _, _ in
            guard record["name"] != nil else { throw Rejected() }
            return nil
        }
        await #expect(throws: Rejected.self) { try await service.save("cat", id: nil, fields: [:]) }
        #expect(try store.find("cat", .init()).isEmpty)
        let cat = try await service.save("cat", id: nil, fields: ["name": .string("Tom")])
        #expect(cat.id != nil)
        #expect(calls.all == ["before_save cat", "before_save cat"])
    }

    @Test(.scratchDirectory) func aBeforeHookMayChangeTheRecordAndAFailingAfterHookLeavesIt() async throws {
        let failures = Calls()
        let (service, store) = try service(hooks: ["before_save cat", "after_save cat"], calls: Calls(), failures: failures) { event, _, record, _, _, _ in
            if event == .afterSave { throw Rejected() }
            var changed = record
            changed["name"] = .string("TOM")
            return changed
        }
        let saved = try await service.save("cat", id: nil, fields: ["name": .string("tom")])
        #expect(try store.get("cat", id: saved.id!)?["name"] == .string("TOM"))
        #expect(failures.all.count == 1)
        #expect(failures.all.first?.hasPrefix("after_save cat: after_save cat failed; the write stands") == true, "\(failures.all)")
    }

    @Test(.scratchDirectory) func writesFromAHookDoNotRetriggerItOrDeadlock() async throws {
        let calls = Calls()
        let holder = Mutex<RecordService?>(nil)
        let (service, store) = try service(hooks: ["before_save cat", "after_save cat"], calls: calls) { event, type, record, _, context, _ in
            let service = holder.withLock { $0 }!
            if event == .beforeSave {
                // A write to another record from inside the before-hook joins its transaction.
                _ = try await service.save("log", id: nil, fields: ["saw": record["name"] ?? .null], from: context)
            } else {
                // An after-hook that updates its own record must not call itself again.
                _ = try await service.save(type, id: record.id, fields: ["seen": .bool(true)], from: context)
            }
            return nil
        }
        holder.withLock { $0 = service }
        let saved = try await service.save("cat", id: nil, fields: ["name": .string("Tom")])
        #expect(try store.get("cat", id: saved.id!)?["seen"] == .bool(true))
        #expect(try store.find("log", .init()).count == 1)
        #expect(calls.all == ["before_save cat", "after_save cat"])
    }

    /// An after-hook that writes a new record of its own type (or two types whose hooks write each
    /// other) chains without end: each level holds a records connection and an instance. The chain
    /// stops at `hookDepthLimit` nested after-hooks; the last write stands, and the app's log says
    /// why its hook was not run. (Without the limit the chain never ended, past the test's time
    /// limit too: the hook here stops itself at generation 100, so that it fails instead.)
    @Test(.scratchDirectory, .timeLimit(.minutes(1))) func afterHooksWritingNewRecordsStopAtTheDepthLimit() async throws {
        let calls = Calls()
        let failures = Calls()
        let holder = Mutex<RecordService?>(nil)
        let (service, store) = try service(hooks: ["after_save cat"], calls: calls, failures: failures) { _, type, record, _, context, _ in
            let service = holder.withLock { $0 }!
            let generation: Int64 = switch record["generation"] {
            case .integer(let n): n
            case .number(let n): Int64(n)
            default: 0
            }
            guard generation < 100 else { return nil }
            _ = try await service.save(type, id: nil, fields: ["generation": .integer(generation + 1)], from: context)
            return nil
        }
        holder.withLock { $0 = service }
        _ = try await service.save("cat", id: nil, fields: ["generation": .integer(0)])
        #expect(calls.all.count == RecordService.hookDepthLimit)
        #expect(try store.find("cat", .init()).count == RecordService.hookDepthLimit + 1, "every write stands")
        #expect(failures.all == [
            "after_save cat: after_save cat was not run: hooks nested \(RecordService.hookDepthLimit) deep (a hook's write ran a hook that wrote again); the write stands"
        ], "\(failures.all)")
        // An unrelated write afterwards runs its hook chain again from the top.
        _ = try await service.save("cat", id: nil, fields: ["generation": .integer(0)])
        #expect(calls.all.count == 2 * RecordService.hookDepthLimit)
    }

    @Test(.scratchDirectory) func concurrentWritesAreSerialised() async throws {
        let (service, store) = try service(hooks: ["before_save counter"], calls: Calls()) { _, _, _, _, _, _ in
            try await Task.sleep(for: .milliseconds(5))
            return nil
        }
        let counter = try await service.save("counter", id: nil, fields: ["n": .number(0)])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    let current = try await service.get("counter", id: counter.id!)
                    _ = current
                    _ = try await service.save("counter", id: counter.id!, fields: ["touched": .bool(true)])
                }
            }
            try await group.waitForAll()
        }
        #expect(try store.find("counter", .init()).count == 1)
    }

    /// A write's context comes from a function's request header: no value it can hold, such as
    /// the words the lock once held while passing from one writer to the next, lets a write skip
    /// its hooks or slip into another's transaction.
    @Test(.scratchDirectory) func noContextAFunctionCanSendSkipsTheBeforeHook() async throws {
        let calls = Calls()
        let (service, _) = try service(hooks: ["before_save cat"], calls: calls) { _, _, _, _, _, _ in
            await Task.yield()
            return nil
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<200 {
                group.addTask {
                    // Arrivals spread out, so that some come while the lock passes between writers.
                    for _ in 0..<(index % 13) * 5 { await Task.yield() }
                    _ = try await service.save("cat", id: nil, fields: ["n": .integer(Int64(index))], from: index.isMultiple(of: 2) ? nil : "handing over")
                }
            }
            try await group.waitForAll()
        }
        #expect(calls.all.count == 200, "\(200 - calls.all.count) writes skipped their before-hook")
    }
}
