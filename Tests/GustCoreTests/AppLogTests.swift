import Foundation
import GustCore
import GustTesting
import Testing

@Suite struct AppLogTests {
    func entry(_ line: String, function: String? = nil) -> LogEntry {
        LogEntry(release: 3, instance: "a1", stream: "stdout", function: function, line: line)
    }

    /// What an app prints reaches an admin's terminal through `gust logs`: a carriage return that
    /// would write a forged prefix over the real one, and escape sequences, are shown, not sent.
    @Test func controlCharactersOfALineAreShownNotSent() {
        let forged = entry("\r2026-01-01T00:00:00.000Z v9 b2 [op admin] all is well\u{1B}]52;c;cm0gLXJm\u{07}\u{9B}2J\tok", function: "op \u{1B}[8m")
        let text = forged.formatted
        #expect(!text.unicodeScalars.contains { ($0.value < 0x20 && $0 != "\t") || (0x7F...0x9F).contains($0.value) }, "\(text.debugDescription)")
        #expect(text.hasSuffix(" v3 a1 [op \\x1B[8m] \\x0D2026-01-01T00:00:00.000Z v9 b2 [op admin] all is well\\x1B]52;c;cm0gLXJm\\x07\\x9B2J\tok"), "\(text)")
        #expect(entry("plain \u{2028} é\ttab").formatted.hasSuffix(" plain \u{2028} é\ttab"))
    }

    @Test(.scratchDirectory) func tailReturnsTheLatestLinesAndFiltersByFunction() throws {
        let home = GustHome(path: ScratchDirectory.current.path)
        try home.prepare()
        let log = AppLog(home: home, app: try AppName("cats"))
        try log.append((1...5).map { entry("line \($0)", function: $0 % 2 == 0 ? "schedule meow" : "op food:buy") })
        #expect(log.tail(2).map(\.line) == ["line 4", "line 5"])
        #expect(log.tail(10, function: "meow").map(\.line) == ["line 2", "line 4"])
        #expect(log.tail(10, function: "schedule meow").count == 2)
        #expect(log.tail(10, function: "eow").isEmpty, "a name matches whole words of the label, not any suffix")
        #expect(log.tail(1).first?.formatted.contains("v3 a1 [op food:buy] line 5") == true)
    }

    @Test(.scratchDirectory) func storageIsBoundedAndTheOldestLinesGoFirst() throws {
        let home = GustHome(path: ScratchDirectory.current.path)
        try home.prepare()
        let log = AppLog(home: home, app: try AppName("cats"), maxBytes: 2_000)
        for index in 1...200 { try log.append([entry("line \(index)")]) }
        let size = { (url: URL) in (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0 }
        #expect(size(log.current) + size(log.previous) <= 4_000)
        #expect(log.files.count == 2, "one rotated file by default")
        let kept = log.tail(1_000).map(\.line)
        #expect(kept.last == "line 200")
        #expect(!kept.contains("line 1"))
    }

    @Test(.scratchDirectory) func secretsAreMaskedBeforeTheyAreStored() throws {
        let home = GustHome(path: ScratchDirectory.current.path)
        try home.prepare()
        let log = AppLog(home: home, app: try AppName("cats"))
        try log.append([entry("token is hunter2-secret")], masking: ["hunter2-secret"])
        let raw = try String(contentsOf: log.current, encoding: .utf8)
        #expect(!raw.contains("hunter2-secret"))
        #expect(log.tail(1).first?.line == "token is \(ConfigVar.mask)")
    }

    @Test(.scratchDirectory) func rotatedFilesShiftUpAndThoseBeyondTheCountGo() throws {
        let home = GustHome(path: ScratchDirectory.current.path)
        try home.prepare()
        let log = AppLog(home: home, app: try AppName("cats"), retention: LogRetention(maxBytes: 1_000, files: 3))
        for index in 1...300 { try log.append([entry("line \(index)")]) }
        #expect(log.files.map(\.lastPathComponent) == ["cats.log.3", "cats.log.2", "cats.log.1", "cats.log"])
        let kept = log.tail(10_000).map(\.line)
        #expect(kept.last == "line 300")
        #expect(kept == kept.sorted { Int($0.dropFirst(5))! < Int($1.dropFirst(5))! }, "oldest first across every file")
        #expect(kept.count > 20 && kept.count < 300)
        #expect(log.tail(3).map(\.line) == ["line 298", "line 299", "line 300"])
        // Fewer files kept now (gustd restarted with --log-files 1): the next expiry drops the rest.
        try AppLog(home: home, app: try AppName("cats"), retention: LogRetention(maxBytes: 1_000, files: 1)).expire()
        #expect(log.files.map(\.lastPathComponent) == ["cats.log.1", "cats.log"])
    }

    @Test(.scratchDirectory) func linesOlderThanTheMaximumAgeGoAFileAtATime() throws {
        let home = GustHome(path: ScratchDirectory.current.path)
        try home.prepare()
        let log = AppLog(home: home, app: try AppName("cats"), retention: LogRetention(maxBytes: 1 << 20, files: 2, maxAge: .seconds(3600)))
        let now = Date()
        try log.append([LogEntry(time: now.addingTimeInterval(-7200), release: 1, instance: nil, stream: "stdout", function: nil, line: "old")])
        try log.append([LogEntry(time: now.addingTimeInterval(-60), release: 1, instance: nil, stream: "stdout", function: nil, line: "recent")])
        try log.expire(now: now)
        // The current file's oldest line is past the age: it rotates (its newest line is recent, so it stays).
        #expect(log.files.map(\.lastPathComponent) == ["cats.log.1", "cats.log"])
        #expect(log.tail(10).map(\.line) == ["old", "recent"])
        // Two hours on, every line of the rotated file is past the age: it goes.
        try log.expire(now: now.addingTimeInterval(7200))
        #expect(log.tail(10).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: log.previous.path))
    }

    @Test(.scratchDirectory) func aCursorFollowsTheLogAcrossRotationsWithoutLosingALine() throws {
        let home = GustHome(path: ScratchDirectory.current.path)
        try home.prepare()
        let log = AppLog(home: home, app: try AppName("cats"), retention: LogRetention(maxBytes: 600, files: 2))
        var cursor = log.endCursor()
        var seen: [String] = []
        var index = 0
        for round in 1...40 {
            for _ in 0..<(round % 4) {
                index += 1
                try log.append([entry("line \(index)")])
            }
            let batch = log.read(after: cursor, maxBytes: round % 3 == 0 ? 100 : 1 << 20)
            #expect(!batch.skipped)
            seen += batch.entries.map(\.line)
            cursor = batch.cursor
        }
        while true {
            let batch = log.read(after: cursor)
            guard !batch.entries.isEmpty else { break }
            seen += batch.entries.map(\.line)
            cursor = batch.cursor
        }
        #expect(seen == (1...index).map { "line \($0)" })
    }

    /// gust dev stops its follower at Ctrl-C: lines written up to that moment are still passed on,
    /// however long its poll, and then it returns. The lines come just before the follower is told
    /// to finish (from inside `finished`), the hardest case: between its last read and its stop.
    @Test(.scratchDirectory) func aFollowerToldToFinishPassesOnWhatCameBeforeAndReturns() throws {
        let home = GustHome(path: ScratchDirectory.current.path)
        try home.prepare()
        let log = AppLog(home: home, app: try AppName("cats"))
        try log.append([entry("before the follower")])
        var asked = 0
        var seen: [String] = []
        log.follow(
            poll: .seconds(3600),
            finished: {
                asked += 1
                guard asked == 1 else { return true }
                try? log.append([entry("last words"), entry("really last")])
                return true
            }
        ) { entry in
            seen.append(entry.line)
            return true
        }
        #expect(seen == ["last words", "really last"])
    }

    @Test(.scratchDirectory) func aCursorWhoseFileWasRotatedAwaySaysLinesWereSkipped() throws {
        let home = GustHome(path: ScratchDirectory.current.path)
        try home.prepare()
        let log = AppLog(home: home, app: try AppName("cats"), retention: LogRetention(maxBytes: 500, files: 1))
        try log.append([entry("first")])
        let cursor = log.endCursor()
        for index in 1...100 { try log.append([entry("line \(index)")]) }
        let batch = log.read(after: cursor)
        #expect(batch.skipped)
        #expect(batch.entries.last?.line == "line 100")
        #expect(batch.entries.first?.line != "line 1")
        // From there on, nothing is skipped.
        try log.append([entry("after")])
        let next = log.read(after: batch.cursor)
        #expect(!next.skipped)
        #expect(next.entries.map(\.line) == ["after"])
    }

    @Test func anEntryAsJSONNamesItsAppAndTimeInRFC3339() throws {
        let line = LogEntry(time: Date(timeIntervalSince1970: 1_700_000_000.25), release: 3, instance: "a1", stream: "stderr", function: "op x", line: "he said \"<hi>\"")
            .jsonLine(app: try AppName("cats"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["time"] as? String == "2023-11-14T22:13:20.250Z")
        #expect(object["app"] as? String == "cats")
        #expect(object["line"] as? String == "he said \"<hi>\"")
        #expect(object["release"] as? Int == 3)
        #expect(!line.contains("\n"))
    }
}
