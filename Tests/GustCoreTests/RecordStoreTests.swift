import Foundation
import GustCore
import GustTesting
import Testing

@Suite struct RecordStoreTests {
    func store() throws -> RecordStore {
        try RecordStore(url: ScratchDirectory.current.appendingPathComponent("data/cats/records.sqlite"))
    }

    @Test(.scratchDirectory) func createReadUpdateDelete() throws {
        let records = try store()
        let cat = try records.insert("cat", ["name": .string("Tom"), "age": .number(3), "_id": .string("forged")])
        let id = try #require(cat["_id"].flatMap { if case .string(let s) = $0 { s } else { nil } })
        #expect(id != "forged")
        #expect(cat["_created_at"] != nil && cat["_updated_at"] != nil)
        #expect(try records.get("cat", id: id)?["name"] == .string("Tom"))
        var fields = cat
        fields["age"] = .number(4)
        let updated = try records.replace("cat", id: id, fields)
        #expect(updated["age"] == .number(4) && updated["_created_at"] == cat["_created_at"])
        try records.delete("cat", id: id)
        #expect(try records.get("cat", id: id) == nil)
        #expect(throws: GustError.self) { try records.delete("cat", id: id) }
    }

    @Test(.scratchDirectory) func queriesFilterOrderAndLimit() throws {
        let records = try store()
        for (name, stars) in [("a", 5), ("b", 3), ("c", 5), ("d", 1)] {
            _ = try records.insert("Review", ["name": .string(name), "stars": .number(Double(stars)), "ok": .bool(true)])
        }
        _ = try records.insert("cat", ["name": .string("a")])
        let fives = try records.find("Review", .init(filters: ["stars": .number(5)]))
        #expect(fives.compactMap { $0["name"] } == [.string("a"), .string("c")])
        let ordered = try records.find("Review", .init(filters: ["ok": .bool(true)], order: "-stars", limit: 3))
        #expect(ordered.compactMap { $0["stars"] } == [.number(5), .number(5), .number(3)])
        #expect(try records.find("Review", .init(order: "name", limit: 1)).first?["name"] == .string("a"))
        #expect(throws: GustError.self) { try records.find("Review", .init(filters: ["x') OR 1=1 --": .null])) }
        #expect(throws: GustError.self) { try records.find("bad type", .init()) }
    }
}
