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

    /// `where` matches a field only by a value of its own JSON type: SQLite reads `true` as 1 and
    /// an array as its text, and neither may stand for the other (a filter of `true` finding a
    /// count of 1, or a string finding a list) — what an app's query means is what it gets.
    @Test(.scratchDirectory) func whereMatchesOnlyAValueOfTheFieldsOwnType() throws {
        let records = try store()
        _ = try records.insert("thing", ["name": .string("flag"), "v": .bool(true)])
        _ = try records.insert("thing", ["name": .string("one"), "v": .integer(1)])
        _ = try records.insert("thing", ["name": .string("one.0"), "v": .number(1.5)])
        _ = try records.insert("thing", ["name": .string("text"), "v": .string("1")])
        _ = try records.insert("thing", ["name": .string("list"), "v": .array([.integer(1), .integer(2)])])
        _ = try records.insert("thing", ["name": .string("object"), "v": .object(["a": .integer(1)])])
        _ = try records.insert("thing", ["name": .string("none")])
        func names(_ value: JSONValue, _ field: String = "v") throws -> [String] {
            try records.find("thing", .init(filters: [field: value])).compactMap { if case .string(let s)? = $0["name"] { s } else { nil } }
        }
        #expect(try names(.bool(true)) == ["flag"])
        #expect(try names(.bool(false)) == [])
        #expect(try names(.integer(1)) == ["one"])
        #expect(try names(.number(1)) == ["one"], "1 and 1.0 are one number")
        #expect(try names(.number(1.5)) == ["one.0"])
        #expect(try names(.string("1")) == ["text"])
        #expect(try names(.string("[1,2]")) == [], "a string never matches a list")
        #expect(try names(.string(#"{"a":1}"#)) == [], "nor an object")
        #expect(try names(.array([.integer(1), .integer(2)])) == ["list"])
        #expect(try names(.object(["a": .integer(1)])) == ["object"])
        #expect(try names(.null) == ["none"], "null matches a field that is missing")
        let id = try #require(try records.find("thing", .init(filters: ["name": .string("flag")])).first?["_id"])
        #expect(try records.find("thing", .init(filters: ["_id": id])).count == 1)
        #expect(try names(.integer(1), "_created_at") == [], "the store's own fields are strings")
    }
}
