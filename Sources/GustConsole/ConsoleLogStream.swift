import Foundation
import GustCore
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix
import ServiceLifecycle

/// `GET /apps/APP/logs/stream`: the app's new log lines as Server-Sent Events,
/// one JSON object per event. The JSON is written so that no `<`, `>` or `&`
/// appears in it even inside strings (they travel as `\u003c` …), and the page's
/// script shows each line with `textContent`: a hostile line stays text.
///
/// The file is polled off the event loops; a stream ends after `maxLifetime`
/// (the browser reconnects, and signs in again if it must), when gustd shuts
/// down, when its client leaves, or at the first `recheck` that finds its
/// session closed or its token revoked, expired or no longer reaching the app.
public enum ConsoleLogStream {
    static let poll: Duration = .milliseconds(250)
    static let maxLifetime: Duration = .seconds(600)
    static let keepAlive: Duration = .seconds(15)
    public static let recheck: Duration = .seconds(5)

    static func response(
        app: AppName, function: String?, home: GustHome, recheck: Duration, stillAllowed: @escaping @Sendable () async -> Bool,
        holding slot: ConsoleStreamSlots.Slot? = nil
    ) -> Response {
        let filter = function.flatMap { $0.isEmpty ? nil : $0 }
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            defer { withExtendedLifetime(slot) {} }  // held for as long as the stream runs
            let log = AppLog(home: home, app: app)
            var follower = LogFollower(url: log.current)
            try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
            let end = ContinuousClock.now + maxLifetime
            var quietSince = ContinuousClock.now
            var checked = ContinuousClock.now
            while ContinuousClock.now < end, !Task.isCancelled, !Task.isShuttingDownGracefully {
                if ContinuousClock.now - checked >= recheck {
                    guard await stillAllowed() else { break }
                    checked = .now
                }
                let entries = try await NIOThreadPool.singleton.runIfActive { [follower] in
                    var reading = follower
                    let entries = reading.read()
                    return (reading, entries)
                }
                follower = entries.0
                var chunk = ""
                for entry in entries.1 where filter.map(entry.belongs(to:)) ?? true {
                    chunk += "data: " + event(entry) + "\n\n"
                }
                if chunk.isEmpty, ContinuousClock.now - quietSince > keepAlive { chunk = ": keep-alive\n\n" }
                if !chunk.isEmpty {
                    try await writer.write(ByteBuffer(string: chunk))
                    quietSince = .now
                }
                try await Task.sleep(for: poll)
            }
            try await writer.finish(nil)
        })
    }

    /// One event's data: a single line of JSON with no HTML-significant characters.
    static func event(_ entry: LogEntry) -> String {
        let object: [String: Any] = [
            "text": entry.formatted, "stream": entry.stream, "function": entry.function ?? "", "instance": entry.instance ?? "",
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return htmlSafeJSON(String(decoding: data, as: UTF8.self))
    }

    /// `<`, `>`, `&` and the line separators as JSON escapes: the same value, but inert wherever the text lands.
    static func htmlSafeJSON(_ json: String) -> String {
        json.replacingOccurrences(of: "<", with: "\\u003c").replacingOccurrences(of: ">", with: "\\u003e")
            .replacingOccurrences(of: "&", with: "\\u0026").replacingOccurrences(of: "\u{2028}", with: "\\u2028")
            .replacingOccurrences(of: "\u{2029}", with: "\\u2029")
    }
}

/// Reads the lines appended to an app's log since the last read, noticing rotation by the inode.
struct LogFollower: Sendable {
    let url: URL
    private var inode: UInt64 = 0
    private var offset: UInt64 = 0
    private var pending = Data()

    init(url: URL) {
        self.url = url
        if let info = Self.info(url) { (inode, offset) = info }
    }

    mutating func read() -> [LogEntry] {
        guard let (node, size) = Self.info(url) else { return [] }
        if node != inode { (inode, offset, pending) = (node, 0, Data()) }
        guard size > offset, let handle = FileHandle(forReadingAtPath: url.path) else { return [] }
        defer { try? handle.close() }
        try? handle.seek(toOffset: offset)
        let chunk = (try? handle.readToEnd()) ?? Data()
        offset += UInt64(chunk.count)
        pending.append(chunk)
        guard let lastNewline = pending.lastIndex(of: 0x0A) else { return [] }
        let complete = pending[..<lastNewline]
        pending = Data(pending[pending.index(after: lastNewline)...])
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return complete.split(separator: 0x0A).compactMap { try? decoder.decode(LogEntry.self, from: Data($0)) }
    }

    private static func info(_ url: URL) -> (UInt64, UInt64)? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
            let node = (attributes[.systemFileNumber] as? NSNumber)?.uint64Value,
            let size = (attributes[.size] as? NSNumber)?.uint64Value
        else { return nil }
        return (node, size)
    }
}
