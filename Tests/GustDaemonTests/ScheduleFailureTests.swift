import Foundation
@testable import GustDaemon
import NIOCore
import NIOHTTP1
import Testing

/// A failed run's message comes from the app's answer, and is kept in gustd's own database (50
/// runs for each of up to 100 schedules an app declares, each as often as every second) and
/// written to the app's log: an app's `{"error": …}` of 30 MiB must not be kept whole.
@Suite struct ScheduleFailureTests {
    func answer(_ status: Int, _ body: String) -> InstanceResponse {
        InstanceResponse(status: status, headers: HTTPHeaders(), body: ByteBuffer(string: body))
    }

    @Test func theRuntimesErrorIsSaidWithTheStatus() {
        #expect(Scheduler.message(of: answer(500, #"{"error": "KeyError: 'tuna'"}"#)) == "KeyError: 'tuna' (status 500)")
        #expect(Scheduler.message(of: answer(502, "not json")) == "the instance answered status 502")
    }

    @Test func aHugeErrorIsCutAndAHugeBodyIsNotRead() throws {
        let long = String(repeating: "x", count: 60_000)  // under readableAnswer: read, then cut
        let cut = Scheduler.message(of: answer(500, #"{"error": "\#(long)"}"#))
        #expect(cut.utf8.count < Scheduler.errorLimit + 100, "\(cut.utf8.count) bytes kept")
        #expect(cut.hasSuffix("… (status 500)"), "\(cut.suffix(40))")
        // One grapheme of a million combining marks is cut too (a Character prefix would keep it whole).
        let marks = "a" + String(repeating: "\u{301}", count: 30_000)
        #expect(Scheduler.message(of: answer(500, #"{"error": "\#(marks)"}"#)).utf8.count < Scheduler.errorLimit + 100)
        let big = Scheduler.message(of: answer(500, #"{"error": "x", "pad": "\#(String(repeating: "y", count: 1 << 20))"}"#))
        #expect(big == "the instance answered status 500 (1.0 MB, not read)", "\(big)")
    }
}
