import Foundation
import GustTesting
@testable import GustDaemon
import Testing

/// The access log written to a file follows a rotation: once the file is renamed (or removed),
/// the writer opens the path anew, so lines neither go on into the rotated file nor fill a disk
/// out of sight. Real files, with the look for a rotation made at every batch (`reopenCheck: 0`).
@Suite struct AccessLogFileTests {
    static func entry(_ path: String) -> AccessLog.Entry {
        AccessLog.Entry(app: "cats", release: 1, instance: nil, method: "GET", path: path, status: 200, bytes: 1, duration: .zero, requestID: "r", time: 0)
    }

    /// The file's text once it holds `line` (the writer takes a batch every 50 ms; bounded at 5 s).
    static func text(_ url: URL, holding line: String) -> String {
        let deadline = Date().addingTimeInterval(5)
        var text = ""
        repeat {
            text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
            if text.contains(line) { break }
            usleep(10_000)
        } while Date() < deadline
        return text
    }

    @Test(.scratchDirectory) func aRenamedOrRemovedFileIsOpenedAnew() throws {
        let url = ScratchDirectory.current.appendingPathComponent("access.log")
        let rotated = ScratchDirectory.current.appendingPathComponent("access.log.1")
        let log = try AccessLog(.file(url.path), reopenCheck: 0)
        defer { log.close() }
        log.record(Self.entry("/before"))
        #expect(Self.text(url, holding: "path=/before").contains("path=/before"))

        try FileManager.default.moveItem(at: url, to: rotated)
        log.record(Self.entry("/after-rename"))
        let renamed = Self.text(url, holding: "path=/after-rename")
        #expect(renamed.contains("path=/after-rename") && !renamed.contains("path=/before"), "\(renamed)")
        #expect(!((try? String(contentsOf: rotated, encoding: .utf8)) ?? "").contains("after-rename"))

        try FileManager.default.removeItem(at: url)
        log.record(Self.entry("/after-remove"))
        #expect(Self.text(url, holding: "path=/after-remove").contains("path=/after-remove"))
    }
}
