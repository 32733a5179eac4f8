import Foundation
@testable import GustDaemon
import NIOCore
import Testing

/// The gateway's hand-written JSON gives the bytes `JSONSerialization` gave
/// for the same object, so clients see the same answers as before.
@Suite struct FlatJSONTests {
    @Test(arguments: [
        "plain", "", "with \"quotes\" and \\ backslashes", "a/b/c", "line\nbreak\rreturn\ttab", "\u{08}\u{0C}\u{01}\u{1F}\u{7F}",
        "naïve ☃ 𝄞", "</script>",
    ])
    func sameBytesAsJSONSerialization(_ text: String) throws {
        let ours = FlatJSON([("error", .string(text)), ("code", .int(503)), ("app", .string("cats")), ("instances", .int(-1))]).buffer
        let foundation = try JSONSerialization.data(
            withJSONObject: ["error": text, "code": 503, "app": "cats", "instances": -1] as [String: Any],
            options: [.sortedKeys, .withoutEscapingSlashes])
        #expect(String(buffer: ours) == String(decoding: foundation, as: UTF8.self))
        // Made in key order (written without sorting), the same bytes.
        let inOrder = FlatJSON([("app", .string("cats")), ("code", .int(503)), ("error", .string(text)), ("instances", .int(-1))]).buffer
        #expect(String(buffer: inOrder) == String(decoding: foundation, as: UTF8.self))
    }

    /// The admin API's `{"ok": …}` answers, as `Gateway.json` wrote them through Foundation.
    @Test(arguments: [true, false])
    func sameBytesForBooleans(_ flag: Bool) throws {
        let ours = FlatJSON([("ok", .bool(flag)), ("error", .string("no schedule nightly")), ("code", .int(0))]).buffer
        let foundation = try JSONSerialization.data(
            withJSONObject: ["ok": flag, "error": "no schedule nightly", "code": 0] as [String: Any],
            options: [.sortedKeys, .withoutEscapingSlashes])
        #expect(String(buffer: ours) == String(decoding: foundation, as: UTF8.self))
        #expect(String(buffer: FlatJSON([("ok", .bool(flag))]).buffer) == (flag ? #"{"ok":true}"# : #"{"ok":false}"#))
    }

    @Test func aKeySetTwiceKeepsItsLastValue() {
        var json = FlatJSON([("state", .string("idle"))])
        json["state"] = .string("running")
        #expect(String(buffer: json.buffer) == #"{"state":"running"}"#)
    }
}
