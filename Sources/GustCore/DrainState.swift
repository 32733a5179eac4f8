public import Foundation

/// How far a drain has got, kept by gustd in `logs/drains/ID.json` after each batch, so a
/// restarted gustd goes on from there and `gust drains list` can say how the drain is doing.
public struct DrainState: Codable, Sendable, Equatable {
    /// The next unread line of the app's log.
    public var cursor: LogCursor?
    /// The time of the last line delivered, to say which lines a gap lost.
    public var lastLineTime: Date?
    public var delivered: Int = 0
    public var lastDelivery: Date?
    /// Set while batches fail, cleared by the next delivery.
    public var failingSince: Date?
    public var lastError: String?
    /// Times lines were lost because the log rotated them away before the receiver took them.
    public var gaps: Int = 0

    public init() {}

    public static func url(home: GustHome, id: String) -> URL {
        home.logs.appendingPathComponent("drains/\(id).json")
    }

    public static func load(home: GustHome, id: String) -> DrainState? {
        guard let data = try? Data(contentsOf: url(home: home, id: id)) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return try? decoder.decode(DrainState.self, from: data)
    }

    public func save(home: GustHome, id: String) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        let url = Self.url(home: home, id: id)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try AtomicFile.write(try encoder.encode(self), to: url)
    }
}
