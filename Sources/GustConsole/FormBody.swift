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

    init(_ header: String?) {
        for part in (header ?? "").split(separator: ";") {
            let halves = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if halves.count == 2 { values[halves[0]] = halves[1] }
        }
    }

    subscript(_ name: String) -> String? { values[name] }
}
