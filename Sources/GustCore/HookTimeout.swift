import Foundation

/// `GUST_BEFORE_HOOK_TIMEOUT` and `GUST_AFTER_HOOK_TIMEOUT`: how long gustd lets an app's record
/// hooks run. Read where `gust config set` stores them (a value gustd cannot use is refused there)
/// and where gustd applies them (a value stored before that check is an error, not a trap).
public enum HookTimeout {
    public static let names: Set<String> = ["GUST_BEFORE_HOOK_TIMEOUT", "GUST_AFTER_HOOK_TIMEOUT"]
    public static let longest: Duration = .seconds(300)

    /// `10s`, `500ms`, `2m`, or a number of seconds, from 1 ms to 5 minutes.
    public static func parse(_ text: String, name: String) throws(GustError) -> Duration {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let (number, milliseconds): (Substring, Double) =
            if trimmed.hasSuffix("ms") { (trimmed.dropLast(2), 1) }
            else if trimmed.hasSuffix("s") { (trimmed.dropLast(), 1000) }
            else if trimmed.hasSuffix("m") { (trimmed.dropLast(), 60_000) }
            else { (Substring(trimmed), 1000) }
        guard let value = number.plainDecimal,
              value * milliseconds >= 1, value * milliseconds <= Double(longest.components.seconds) * 1000
        else {
            throw GustError(
                "\(name) is '\(text.prefix(32))', which is not a time limit from 1ms to 5m.",
                hint: "Set it to seconds or milliseconds, like `gust config set APP \(name)=10s` or `=500ms`."
            )
        }
        return .milliseconds(value * milliseconds)
    }
}
