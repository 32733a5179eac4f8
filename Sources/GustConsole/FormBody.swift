import Foundation

/// An `application/x-www-form-urlencoded` body or query string, read into
/// name → value (the last value of a repeated name wins).
struct FormBody: Sendable {
    var values: [String: String] = [:]

    init(_ text: String) {
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let halves = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map {
                $0.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            values[halves[0]] = halves.count > 1 ? halves[1] : ""
        }
    }

    subscript(_ name: String) -> String? { values[name] }
}

/// The cookies of a request's `Cookie` header.
struct Cookies {
    var values: [String: String] = [:]
    /// Names sent more than once: a cookie another host of the domain set (`Domain=`) beside the
    /// console's own, which the browser sends too, in an order the other host can choose.
    var repeated: Set<String> = []

    /// Every `Cookie` field of a request (a browser may send several).
    init(_ fields: some Sequence<String>) {
        for part in fields.joined(separator: ";").split(separator: ";") {
            let halves = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard halves.count == 2 else { continue }
            if values[halves[0]] != nil { repeated.insert(halves[0]) }
            values[halves[0]] = halves[1]
        }
    }

    /// The value of a name sent once; none for a name sent twice, whichever came last.
    subscript(_ name: String) -> String? { repeated.contains(name) ? nil : values[name] }
}
