import Foundation
import GustCore
import GustTesting
import Testing

/// The store's own bounds (issue 10, item 8): a record's size, and a page's
/// count and bytes, with `nextOffset` to read on.
@Suite struct RecordBoundsTests {
    func store() throws -> RecordStore {
        try RecordStore(url: ScratchDirectory.current.appendingPathComponent("data/cats/records.sqlite"))
    }

    @Test(.scratchDirectory) func aRecordOverTheLimitIsRefusedWith413() throws {
        let records = try store()
        let big: RecordStore.Record = ["blob": .string(String(repeating: "a", count: RecordStore.maxRecordBytes))]
        #expect(throws: GustError.self) { try records.insert("cat", big) }
        do { _ = try records.insert("cat", big) } catch let error as GustError { #expect(error.code == 413) }
        let small = try records.insert("cat", ["name": .string("Tom")])
        #expect(throws: GustError.self) { try records.replace("cat", id: small.id!, big) }
        #expect(try records.find("cat", .init()).count == 1)
        #expect(try records.get("cat", id: small.id!)?["blob"] == nil)
    }

    @Test(.scratchDirectory) func aPageStopsAtItsByteBudgetAndGoesOnFromItsOffset() throws {
        let records = try store()
        let blob = String(repeating: "x", count: 1000)
        for index in 0..<10 {
            _ = try records.insert("cat", ["n": .number(Double(index)), "blob": .string(blob)])
        }
        let first = try records.page("cat", .init(order: "n"), byteBudget: 3500)
        #expect(first.records.map { $0["n"] } == [.number(0), .number(1), .number(2)])
        #expect(first.nextOffset == 3)
        let second = try records.page("cat", .init(order: "n", offset: 3), byteBudget: 3500)
        #expect(second.records.first?["n"] == .number(3))
        #expect(try records.page("cat", .init(order: "n"), byteBudget: 10).records.count == 1, "at least one record")
        let whole = try records.page("cat", .init(order: "n", limit: 5))
        #expect(whole.records.count == 5 && whole.nextOffset == nil, "a limit is not a cut")
    }

    @Test(.scratchDirectory) func aQueryPastItsTimeLimitIsStoppedWith504AndTheStoreGoesOn() throws {
        let records = try store()
        try records.transaction {
            for index in 0..<3000 { _ = try records.insert("cat", ["n": .number(Double(index))]) }
        }
        // A deadline already past: SQLite stops the statement at its first look at the clock.
        do {
            _ = try records.page("cat", .init(filters: ["n": .number(2999)], order: "-n"), until: .now)
            Issue.record("the query was not stopped")
        } catch let error as GustError {
            #expect(error.code == 504)
            #expect(error.message.contains("ran past 10 s and was stopped"), "\(error.message)")
            #expect(error.message.contains("`where` and `order` on fields read every cat record"), "\(error.message)")
        }
        // The connection is not left stopped: the same query within its time, and a write, go on.
        #expect(try records.page("cat", .init(filters: ["n": .number(2999)])).records.count == 1)
        #expect(try records.insert("cat", ["n": .number(-1)]).id != nil)
        #expect(throws: GustError.self) { try records.types(until: .now - .seconds(1)) }
    }

    @Test(.scratchDirectory) func aQueryNeitherSeesNorWaitsForAWriteInProgress() throws {
        let records = try store()
        _ = try records.insert("cat", ["name": .string("Tom")])
        try records.transaction {
            _ = try records.insert("cat", ["name": .string("Felix")])
            // Still uncommitted (a before-hook's write, say): a query reads what was committed, at once.
            #expect(try records.page("cat", .init()).records.map { $0["name"] } == [.string("Tom")])
        }
        #expect(try records.page("cat", .init()).records.count == 2)
    }
}
