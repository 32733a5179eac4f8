import Foundation
import GustTesting
import Testing

@testable import GustCore

/// A page is answered from the stored JSON, the store's own fields spliced in, not decoded and
/// encoded again: the bytes must be the ones encoding the decoded records gives.
@Suite struct RecordPageTextTests {
    /// Records whose keys sort before, among and after `_created_at`, `_id` and `_updated_at`, with
    /// escapes, nesting and text that looks like JSON's own punctuation.
    static let records: [RecordStore.Record] = [
        [:],
        ["name": .string("Tom")],
        ["Name": .string("upper"), "age": .integer(3)],
        ["": .string("empty key"), "A": .null, "zz": .bool(true)],
        ["\"quoted": .string("a \"quote\" } , ] {"), "\\back": .string("\\"), "\u{1}ctrl": .integer(-1)],
        ["nested": .object(["_inner": .array([.object(["}": .string("]")]), .number(1.5)]), "b": .array([])]), "Z": .string("x,y:z")],
        ["é": .string("accent"), "😺": .array([.string("cat")]), "`tick": .integer(0), "{brace": .bool(false)],
        ["^caret": .string("below _"), "~tilde": .string("above")],
    ]

    @Test(.scratchDirectory) func aPageIsTheBytesEncodingItsRecordsGives() throws {
        let store = try RecordStore(url: ScratchDirectory.current.appendingPathComponent("data/cats/records.sqlite"))
        var ids: [String] = []
        for record in Self.records { ids.append(try store.insert("cat", record).id!) }
        _ = try store.replace("cat", id: ids[1], ["name": .string("Tom"), "weight": .number(4.2)])

        for budget in [RecordStore.pageByteBudget, 40] {
            let page = try store.page("cat", .init(), byteBudget: budget)
            let decoded = try ids.prefix(page.texts.count).map { try #require(try store.get("cat", id: $0)) }
            var expected: [String: JSONValue] = ["records": .array(decoded.map(JSONValue.object))]
            if let next = page.nextOffset {
                expected["more"] = .bool(true)
                expected["next_offset"] = .integer(Int64(next))
            }
            #expect(String(decoding: page.answer, as: UTF8.self) == String(decoding: JSONValue.object(expected).encoded(), as: UTF8.self))
            #expect(page.records == decoded)
        }
    }

    @Test func storedTextItCannotReadIsDecodedInstead() {
        // (Text past the slot is not read: the store holds only what the store's writer wrote.)
        for text in ["{\"_old\":1}", "{ \"a\": 1 }", "[1]", "{\"a\":1", "{\"A\"1}", "", "{\"A\":\"1}", "{\"A\":1}x}"] {
            #expect(RecordStore.underscoreSlot(in: Array(text.utf8)) == nil, "\(text)")
        }
        #expect(RecordStore.underscoreSlot(in: Array("{}".utf8)) == 1)
        #expect(RecordStore.underscoreSlot(in: Array("{\"A\":{\"z\":1},\"b\":2}".utf8)) == 13)
        #expect(RecordStore.underscoreSlot(in: Array("{\"A\":[1,2],\"B\":\"}\"}".utf8)) == 18)
    }
}
