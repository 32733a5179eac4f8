import Foundation
import GustCore
import GustTesting
import Testing

@Suite struct AppLogTests {
    func entry(_ line: String, function: String? = nil) -> LogEntry {
        LogEntry(release: 3, instance: "a1", stream: "stdout", function: function, line: line)
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
}
