/// Names Kubernetes accepts for objects, made from Gust's names.
///
/// Why: an app name may end with `-` or hold `--`, and a schedule is named by
/// whatever the app's code registered (`nightly_report`, `Send Mail`, anything),
/// while Kubernetes wants RFC 1123 labels (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`,
/// 63 characters at most; a Service's also starts with a letter, and a
/// CronJob's leaves 11 characters for its Jobs). A name that had to change
/// gets a short hash of the original, so two schedules never end up with one name.
public enum KubernetesName {
    /// The longest object name here: an RFC 1123 label.
    public static let maxLength = 63
    /// A CronJob's name: its Jobs add 11 characters and must stay labels.
    public static let maxCronJobLength = 52

    /// `raw` as an RFC 1123 label starting with a letter, at most `maxLength`
    /// long: lower case, runs of anything but `a-z0-9` as one `-`, no `-` at
    /// either end. When that changed `raw` at all (`Report` and `report` are two
    /// schedules), or it was too long, `-` and 8 hex digits of a hash of `raw` end it.
    public static func label(_ raw: String, maxLength: Int = maxLength) -> String {
        var cleaned = ""
        for byte in raw.lowercased().utf8 {
            let keep = (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            if keep {
                cleaned.append(Character(Unicode.Scalar(byte)))
            } else if !cleaned.isEmpty, !cleaned.hasSuffix("-") {
                cleaned.append("-")
            }
        }
        while cleaned.hasSuffix("-") { cleaned.removeLast() }
        if let first = cleaned.utf8.first, !(UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first) { cleaned = "x-" + cleaned }
        if cleaned == raw, !cleaned.isEmpty, cleaned.utf8.count <= maxLength { return cleaned }
        let suffix = "-" + hash(raw)
        var kept = String(cleaned.prefix(maxLength - suffix.count))
        while kept.hasSuffix("-") { kept.removeLast() }
        return (kept.isEmpty ? "x" : kept) + suffix
    }

    /// Whether `name` is already an RFC 1123 label (as `--namespace` must be: it is the user's, not ours to change).
    public static func isLabel(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, let last = bytes.last, bytes.count <= maxLength else { return false }
        func alphanumeric(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        }
        return alphanumeric(first) && alphanumeric(last) && bytes.allSatisfy { alphanumeric($0) || $0 == UInt8(ascii: "-") }
    }

    /// FNV-1a over the UTF-8 bytes, as 8 hex digits: stable across runs and machines, so an export is repeatable.
    static func hash(_ text: String) -> String {
        var value: UInt32 = 0x811C_9DC5
        for byte in text.utf8 {
            value ^= UInt32(byte)
            value = value &* 0x0100_0193
        }
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }
}
