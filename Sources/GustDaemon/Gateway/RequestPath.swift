import GustCore

/// A request's path as an instance will see it: percent-decoded once (as the
/// runtimes decode), split on `/`, without empty or `.` segments.
///
/// Why a type of its own: the gateway must decide what it refuses on the same
/// path the runtime dispatches on, or a spelling such as `%5fgust`, `//_gust`
/// or `/x/../_gust` slips past the gateway and is decoded into the internal
/// surface behind it. So gustd decides on this decoded form and forwards the
/// canonical re-encoding of it (`percentEncoded`), which a runtime decoding
/// once reads back exactly as these segments.
struct RequestPath: Equatable, Sendable {
    /// Decoded segments; `..` is kept until `resolvingDotSegments()`.
    private(set) var segments: [String]
    /// Whether the path ended in `/` (kept so handlers see what was asked for).
    private(set) var hasTrailingSlash: Bool

    init(segments: some Sequence<String>, hasTrailingSlash: Bool = false) {
        self.segments = Array(segments)
        self.hasTrailingSlash = hasTrailingSlash && !self.segments.isEmpty
    }

    /// Parses a request's path (without its query): decoded once, `\` is not a separator.
    init(percentEncoded raw: String) {
        let decoded = Self.percentDecoded(raw)
        self.init(segments: Self.segments(decoded), hasTrailingSlash: decoded.utf8.last == UInt8(ascii: "/"))
    }

    /// The path's segments, split at each `/` byte, as the runtimes split the path they decoded:
    /// not by characters, where a combining mark after a `/` joins it to the segment before (and
    /// gustd would route `/a/\u{301}b` as one segment where the runtime reads two). In UTF-8
    /// neither `/` nor `.` is ever part of another character's bytes, so this is the split by
    /// Unicode scalars too; and it asks Unicode for nothing (finding graphemes took a tenth of a
    /// health answer's time in gustd, 2026-12-03).
    private static func segments(_ decoded: String) -> [String] {
        var segments: [String] = []
        // Room for every segment at once (at most one per `/`, and one after the last), rather than
        // the array grown, and so allocated again, as they come.
        segments.reserveCapacity(decoded.utf8.count { $0 == UInt8(ascii: "/") } + 1)
        var utf8 = Substring(decoded).utf8
        while let slash = utf8.firstIndex(of: UInt8(ascii: "/")) {
            append(utf8[..<slash])
            utf8 = utf8[utf8.index(after: slash)...]
        }
        append(utf8)
        return segments

        func append(_ bytes: Substring.UTF8View) {
            guard !bytes.isEmpty, !(bytes.count == 1 && bytes.first == UInt8(ascii: ".")) else { return }
            segments.append(String(Substring(bytes)))
        }
    }

    /// A request target's path and its query (what follows the first `?`, nil without one), as
    /// `split(separator: "?")` gives them, without asking Unicode for an ASCII target.
    static func splitTarget(_ target: String) -> (path: Substring, query: Substring?) {
        if target.isASCII {
            guard let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return (target[...], nil) }
            return (target[..<mark], target[target.utf8.index(after: mark)...])
        }
        let split = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        return (split[0], split.count > 1 ? split[1] : nil)
    }

    /// `..` removes the segment before it; at the root it stays at the root (RFC 3986, 5.2.4).
    func resolvingDotSegments() -> RequestPath {
        guard segments.contains("..") else { return self }  // the common case: nothing to resolve, nothing copied
        var resolved: [String] = []
        for segment in segments {
            if segment == ".." { _ = resolved.popLast() } else { resolved.append(segment) }
        }
        return RequestPath(segments: resolved, hasTrailingSlash: hasTrailingSlash || segments.last == "..")
    }

    /// The path after its first `count` segments.
    func dropFirst(_ count: Int) -> RequestPath {
        RequestPath(segments: segments.dropFirst(count), hasTrailingSlash: hasTrailingSlash)
    }

    /// Whether this is `/_/health` (`decoded == "/_/health"`, without making `decoded`).
    var isHealth: Bool {
        !hasTrailingSlash && segments.count == 2 && segments[0] == "_" && segments[1] == "health"
    }

    /// Whether this is under `/_/functions/`, where ops are called (`POST /_/functions/NAME`).
    var isOpCall: Bool { segments.count >= 2 && segments[0] == "_" && segments[1] == "functions" }

    /// An op call's target at the instance: `/_gust/ops/NAME`, without the query.
    var opTarget: String { "/_gust/ops" + dropFirst(2).percentEncoded }

    /// An op call's op, as its function's label knows it.
    var opName: String { String(dropFirst(2).decoded.dropFirst()) }

    /// The decoded path, always starting with `/`.
    var decoded: String {
        "/" + segments.joined(separator: "/") + (hasTrailingSlash ? "/" : "")
    }

    /// The canonical request target: each segment percent-encoded but for
    /// unreserved characters and `!$&'()*+,;=:@`, so `%`, `?`, `#` and `\`
    /// inside a segment stay data once the runtime decodes it (no segment holds a `/`: a path is
    /// split once decoded, as the runtimes split it).
    var percentEncoded: String {
        // Appended in place: no array of encoded segments made to join (asked on every call).
        var text = "/"
        for (index, segment) in segments.enumerated() {
            if index > 0 { text += "/" }
            text += Self.encode(segment)
        }
        if hasTrailingSlash { text += "/" }
        return text
    }

    /// Whether any reading of the path reaches gustd's side of an app:
    /// `/_gust…` (the runtime's internal surface) or `/_/…` other than the
    /// public `/_/functions/NAME`, `/_/records…` and `/_/health`. Decides on
    /// the path decoded once and on every further decoding of it (a proxy or
    /// runtime that decodes twice must find nothing either), case-insensitively,
    /// with `\` read as `/`.
    var reachesReservedSurface: Bool {
        // Nothing left to decode and no `\`: the segments are what every reading finds. (Looked for
        // in the segments, which hold every byte of `decoded` but its `/`s: no string joined per call.)
        if !segments.contains(where: { $0.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "\\") }) }) {
            return Self.isReserved(resolvingDotSegments())
        }
        var reading = decoded
        for _ in 0..<Self.maximumDecodings {
            if Self.isReserved(RequestPath(readingBackslashAsSlash: reading)) { return true }
            let next = Self.percentDecoded(reading)
            if next == reading { return false }
            reading = next
        }
        return true  // encoded more deeply than any client means to: refuse
    }

    private static let maximumDecodings = 8

    private init(readingBackslashAsSlash text: String) {
        var slashed = String.UnicodeScalarView()
        slashed.append(contentsOf: text.unicodeScalars.lazy.map { $0 == "\\" ? "/" : $0 })  // by scalar: a mark after `\` leaves it a `\`
        self = RequestPath(segments: Self.segments(String(slashed))).resolvingDotSegments()
    }

    private static func isReserved(_ path: RequestPath) -> Bool {
        guard let first = path.segments.first?.lowercased() else { return false }
        // By code units, as the runtimes compare: `_gust` followed by a combining mark is still internal.
        if first.utf8.starts(with: "_gust".utf8) { return true }
        guard first == "_" else { return false }
        let second = path.segments.dropFirst().first
        switch second {
        case "functions": return path.segments.count < 3
        case "records", "health": return false
        default: return true
        }
    }

    /// Decodes `%XX` escapes as UTF-8; a malformed escape is kept as sent and
    /// an invalid UTF-8 sequence becomes U+FFFD (as Python's `unquote` does).
    static func percentDecoded(_ text: String) -> String {
        guard text.utf8.contains(UInt8(ascii: "%")) else { return text }  // by byte: no escape is a `%` joined to a mark
        let bytes = Array(text.utf8)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count,
                let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2])
            {
                output.append(high << 4 | low)
                index += 3
            } else {
                output.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Whether a byte stays as it is in a segment, by its value.
    private static let unescaped: [Bool] = {
        var table = [Bool](repeating: false, count: 256)
        for byte in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@".utf8 { table[Int(byte)] = true }
        return table
    }()

    private static func encode(_ segment: String) -> String {
        if segment.utf8.allSatisfy({ unescaped[Int($0)] }) { return segment }  // most segments: nothing to escape
        var output: [UInt8] = []
        output.reserveCapacity(segment.utf8.count * 3)
        for byte in segment.utf8 {
            if unescaped[Int(byte)] {
                output.append(byte)
            } else {
                output += [UInt8(ascii: "%"), HexDigits.upper[Int(byte >> 4)], HexDigits.upper[Int(byte & 0xF)]]
            }
        }
        return String(decoding: output, as: UTF8.self)
    }
}
