import Foundation
import GustCore
import NIOCore
import NIOPosix

/// What an instance says it serves: `GET /_gust/manifest` (docs/runtime-protocol.md).
struct FunctionManifest: Codable, Sendable, Equatable {
    /// Runtime protocol versions gustd speaks: 2 adds call ids (`X-Gust-Call`), with output lines tagged by call.
    static let supportedProtocols = 1...2
    /// The largest manifest gustd reads; past it the deploy fails.
    static let maxBytes = 1024 * 1024

    /// Manifests up to this size are decoded where they arrive: a few functions' worth decodes in
    /// microseconds, less than the two thread hops to NIO's pool and back cost an instance's start.
    static let inlineDecodeBytes = 16 * 1024

    /// Decodes a manifest: a small one at once, a larger one on NIO's thread pool (at up to
    /// a megabyte, not work for an event loop).
    static func decode(_ body: ByteBuffer) async throws -> FunctionManifest {
        if body.readableBytes <= inlineDecodeBytes {
            return try JSONDecoder().decode(FunctionManifest.self, from: Data(body.readableBytesView))
        }
        return try await NIOThreadPool.singleton.runIfActive {
            try JSONDecoder().decode(FunctionManifest.self, from: Data(body.readableBytesView))
        }
    }

    struct Op: Codable, Sendable, Equatable { var name: String }
    struct Handler: Codable, Sendable, Equatable {
        var path: String
        var methods: [String]
    }
    struct Schedule: Codable, Sendable, Equatable {
        var name: String
        var every: String?
        var cron: String?
        /// The JSON params given at registration, passed back on each run.
        var params: JSONValue?
    }
    struct Hook: Codable, Sendable, Equatable {
        var event: String
        var type: String
        var name: String?
    }

    var protocolVersion: Int
    /// Whether the runtime takes a call id with each call and tags what it prints with it (protocol 2).
    var takesCallIDs: Bool { protocolVersion >= 2 }
    var runtime: String?
    var ops: [Op]
    var handlers: [Handler]
    var schedules: [Schedule]
    var hooks: [Hook]

    /// The hooks as `RecordService` names them: `"before_save cat"`.
    var hookNames: Set<String> { Set(hooks.map { "\($0.event) \($0.type)" }) }

    enum CodingKeys: String, CodingKey {
        case protocolVersion = "protocol"
        case runtime, ops, handlers, schedules, hooks
    }

    /// Ops, handlers or hooks a release may declare, each (schedules: `Scheduler.maxSchedulesPerApp`).
    /// Every one becomes a row of `gust apps`' functions, a label of gustd's metrics and a name the
    /// gateway looks up per call: a megabyte of manifest held some 37,000 of them.
    static let maxFunctions = 1000

    /// The longest op name, handler path or hook's record type, in UTF-8 bytes (a schedule's name:
    /// `Scheduler.longestName`). Each is a label value of a dozen metric series: names of 80 KB
    /// made a scrape of hundreds of megabytes per app.
    static let longestName = 256

    /// Refuses a manifest that declares more than `maxFunctions` of a kind, or a name longer than `longestName`.
    func checkBounds(version: Int) throws {
        for (kind, count) in [("ops", ops.count), ("handlers", handlers.count), ("hooks", hooks.count)] where count > Self.maxFunctions {
            throw GustError("v\(version) declares \(count) \(kind): at most \(Self.maxFunctions) of each kind are served.")
        }
        let named = ops.map { ("an op whose name", $0.name) } + handlers.map { ("a handler whose path", $0.path) }
            + hooks.map { ("a hook whose record type", $0.type) }
        if let (what, name) = named.first(where: { $0.1.utf8.count > Self.longestName }) {
            throw GustError("v\(version) declares \(what) is longer than \(Self.longestName) bytes: \(name.prefix(40))…")
        }
    }

    /// One line per function, as the pusher sees them.
    var summary: [String] {
        var lines: [String] = []
        if let runtime { lines.append("Runtime: \(runtime)") }
        lines += ops.map { "op       \($0.name)" }
        lines += handlers.map { "handler  \($0.methods.joined(separator: ",")) \($0.path)" }
        lines += schedules.map { "schedule \($0.name) \($0.every.map { "every \($0)" } ?? $0.cron.map { "cron \($0)" } ?? "")" }
        lines += hooks.map { "hook     \($0.event) \($0.type)\($0.name.map { " (\($0))" } ?? "")" }
        if ops.isEmpty && handlers.isEmpty && schedules.isEmpty && hooks.isEmpty {
            lines.append("No functions registered: import your modules from the app's entry point.")
        }
        return lines
    }
}
