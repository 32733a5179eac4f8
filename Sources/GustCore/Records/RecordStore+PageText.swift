import Foundation

/// A page's records as the JSON the records API answers, made from the stored text: each record's
/// stored fields (an object `JSONText` wrote, keys sorted, none starting with `_`) with the store's
/// own `_created_at`, `_id` and `_updated_at` spliced in where sorted keys put them. Decoding a
/// page of up to 4 MiB into values and encoding it again took several times its size in memory,
/// and most of a query's time; the bytes out are the same (`RecordPageTextTests`).
extension RecordStore {
    /// `stored`: the row's `data`, read once by the caller.
    static func recordText(_ row: Row, stored text: String) -> [UInt8] {
        let stored = Array(text.utf8)
        var own: [UInt8] = []
        for (index, (key, column)) in [("_created_at", "created_at"), ("_id", "id"), ("_updated_at", "updated_at")].enumerated() {
            if index > 0 { own.append(UInt8(ascii: ",")) }
            JSONText.writeString(key, to: &own)
            own.append(UInt8(ascii: ":"))
            JSONText.writeString(row.string(column) ?? "", to: &own)
        }
        guard let slot = underscoreSlot(in: stored) else {
            // Not text this reads (stored by hand, or by an older Gust in another form): decoded and encoded.
            var out: [UInt8] = []
            JSONText.write(.object(record(row)), to: &out)
            return out
        }
        var out: [UInt8] = []
        out.reserveCapacity(stored.count + own.count + 2)
        if stored.count == 2 {  // {}
            out.append(UInt8(ascii: "{"))
            out += own
            out.append(UInt8(ascii: "}"))
        } else if stored[slot] == UInt8(ascii: "}") {  // after every key
            out += stored[..<slot]
            out.append(UInt8(ascii: ","))
            out += own
            out += stored[slot...]
        } else {  // before the key at `slot`
            out += stored[..<slot]
            out += own
            out.append(UInt8(ascii: ","))
            out += stored[slot...]
        }
        return out
    }

    /// Where keys starting with `_` go in `text`, a JSON object with sorted keys and no white space:
    /// the opening quote of the first key that sorts after them (its first byte is past `_`), else
    /// the closing brace. nil if the text is not such an object, or already has a key starting
    /// with `_`.
    static func underscoreSlot(in text: [UInt8]) -> Int? {
        guard text.count >= 2, text.first == UInt8(ascii: "{"), text.last == UInt8(ascii: "}") else { return nil }
        var index = 1
        if text[index] == UInt8(ascii: "}") { return index == text.count - 1 ? index : nil }
        while index < text.count {
            guard text[index] == UInt8(ascii: "\""), index + 1 < text.count else { return nil }
            // A key's first byte; an escape (`\"`, `\\`, `\n`, `\u0001`…) stands for one below `_`,
            // and the empty key sorts first.
            let first = text[index + 1]
            if first == UInt8(ascii: "_") { return nil }
            if first > UInt8(ascii: "_") { return index }
            guard let afterKey = skipString(text, from: index), afterKey < text.count, text[afterKey] == UInt8(ascii: ":"),
                  let afterValue = skipValue(text, from: afterKey + 1), afterValue < text.count
            else { return nil }
            switch text[afterValue] {
            case UInt8(ascii: ","): index = afterValue + 1
            case UInt8(ascii: "}"): return afterValue == text.count - 1 ? afterValue : nil
            default: return nil
            }
        }
        return nil
    }

    /// The index past the string whose opening quote is at `start`.
    private static func skipString(_ text: [UInt8], from start: Int) -> Int? {
        var index = start + 1
        while index < text.count {
            switch text[index] {
            case UInt8(ascii: "\\"): index += 2
            case UInt8(ascii: "\""): return index + 1
            default: index += 1
            }
        }
        return nil
    }

    /// The index past the value starting at `start` (a string, an object or array, or a scalar).
    private static func skipValue(_ text: [UInt8], from start: Int) -> Int? {
        guard start < text.count else { return nil }
        switch text[start] {
        case UInt8(ascii: "\""):
            return skipString(text, from: start)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            var index = start
            while index < text.count {
                switch text[index] {
                case UInt8(ascii: "\""):
                    guard let next = skipString(text, from: index) else { return nil }
                    index = next
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { return index + 1 }
                default: break
                }
                index += 1
            }
            return nil
        default:
            var index = start
            while index < text.count, text[index] != UInt8(ascii: ","), text[index] != UInt8(ascii: "}") { index += 1 }
            return index
        }
    }
}
