import Foundation

extension Duration {
    /// The duration in seconds, for messages and arithmetic with `Double`s.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }

    /// Whole seconds or milliseconds, as a person reads a limit: "15 s", "250 ms".
    public var shortText: String {
        let value = seconds
        if value >= 1 && value == value.rounded() { return "\(Int(value)) s" }
        return value >= 1 ? String(format: "%.1f s", value) : "\(Int((value * 1000).rounded())) ms"
    }
}
