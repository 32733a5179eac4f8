// Driver for scripts/bench_json.sh: Gust's JSON reader and writer (JSONText) against the Codable
// path through Foundation that records took before, on the same texts, in one run.
import Foundation

enum SQLValue { case null, integer(Int64), real(Double), text(String), blob([UInt8]) }

func seconds(_ body: () -> Void) -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

func median(_ runs: Int, _ body: () -> Void) -> Double {
    (0..<runs).map { _ in seconds(body) }.sorted()[runs / 2]
}

let foundationEncoder = JSONEncoder()
foundationEncoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
let texts: [(String, String)] = [
    ("{\"a\":[{},{},…]} (adversarial)", "{\"a\":[" + Array(repeating: "{}", count: 340_000).joined(separator: ",") + "]}"),
    ("[0,0,…]", "[" + Array(repeating: "0", count: 500_000).joined(separator: ",") + "]"),
    ("[\"\",\"\",…]", "[" + Array(repeating: "\"\"", count: 340_000).joined(separator: ",") + "]"),
    ("1,000 typical records", "[" + (0..<1000).map { "{\"name\":\"Tom \($0)\",\"age\":\($0 % 20),\"weight\":\(Double($0) / 7),\"tags\":[\"a\",\"b\"],\"owner\":{\"id\":\($0),\"ok\":true}}" }.joined(separator: ",") + "]"),
]
print("| text | bytes | read, Foundation | read, JSONText | write, Foundation | write, JSONText |")
print("|---|---|---|---|---|---|")
for (name, text) in texts {
    let data = Data(text.utf8)
    var value = JSONValue.null
    let oldRead = median(3) { value = try! JSONDecoder().decode(JSONValue.self, from: data) }
    let newRead = median(3) { value = try! JSONValue.parse(data) }
    let oldWrite = median(3) { _ = try! foundationEncoder.encode(value) }
    let newWrite = median(3) { _ = value.encoded() }
    precondition(try! foundationEncoder.encode(value) == value.encoded(), "the same bytes")
    print(String(format: "| %@ | %d | %.3f s | %.3f s | %.3f s | %.3f s |", name, data.count, oldRead, newRead, oldWrite, newWrite))
}
