import Foundation

/// How much of an app's log is kept, and for how long (gustd's `--log-max`, `--log-files`,
/// `--log-max-age`): `logs/APP.log` rotates into `APP.log.1` when it reaches `maxBytes` (or
/// once its oldest line is older than `maxAge`), the rotated files shift up to `APP.log.N`
/// and the one past `files` is deleted, as is a rotated file whose newest line is older than
/// `maxAge`. Disk use per app stays under about `(files + 1) × maxBytes`.
public struct LogRetention: Sendable, Equatable {
    public static let defaultMaxBytes = 4 * 1024 * 1024
    public static let `default` = LogRetention()

    public var maxBytes: Int
    /// Rotated files kept, 1 or more.
    public var files: Int
    /// Lines older than this go, a file at a time; nil keeps them while they fit.
    public var maxAge: Duration?

    public init(maxBytes: Int = LogRetention.defaultMaxBytes, files: Int = 1, maxAge: Duration? = nil) {
        self.maxBytes = maxBytes
        self.files = max(1, files)
        self.maxAge = maxAge
    }

    /// `90m`, `12h`, `7d`, `2w` (or a sum, `1d12h`); nil for anything else.
    public static func parseAge(_ text: String) -> Duration? {
        var total = 0
        var digits = ""
        for character in text.trimmingCharacters(in: .whitespaces).lowercased() {
            if character.isASCII, character.isNumber {
                digits.append(character)
                continue
            }
            let unit: Int? = switch character { case "s": 1; case "m": 60; case "h": 3600; case "d": 86_400; case "w": 604_800; default: nil }
            guard let unit, let amount = Int(digits), amount < 1_000_000 else { return nil }
            total += amount * unit
            digits = ""
        }
        guard digits.isEmpty, total > 0 else { return nil }
        return .seconds(total)
    }
}
