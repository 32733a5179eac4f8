import Foundation

/// A Node version range as package.json's `engines.node` spells it (npm's semver ranges): `18`,
/// `18.x`, `>=20`, `^18.19`, `~18.19.0`, `>=18 <21`, `18 - 20`, `^18 || ^20`, `*`. Parsed into
/// comparator sets, as node-semver desugars them; pre-release tags are refused (Debian's Node has
/// none). The text is a pushed file's: bounded, and refused with a message when it is not a range.
public struct NodeVersionRange: Sendable, Equatable, CustomStringConvertible {
    /// A version with three numbers; ordered as semver orders release versions.
    public struct Version: Sendable, Comparable, Equatable, CustomStringConvertible {
        public var major, minor, patch: Int
        public init(_ major: Int, _ minor: Int, _ patch: Int) { (self.major, self.minor, self.patch) = (major, minor, patch) }
        /// "18.19.0" or "v18.19.0" (what `node --version` prints); nil otherwise.
        public init?(_ text: String) {
            let trimmed = text.hasPrefix("v") ? String(text.dropFirst()) : text
            let parts = trimmed.split(separator: ".", omittingEmptySubsequences: false).map { Int($0) }
            guard parts.count == 3, let major = parts[0], let minor = parts[1], let patch = parts[2], major >= 0, minor >= 0, patch >= 0
            else { return nil }
            self.init(major, minor, patch)
        }
        public static func < (a: Self, b: Self) -> Bool { (a.major, a.minor, a.patch) < (b.major, b.minor, b.patch) }
        public var description: String { "\(major).\(minor).\(patch)" }
    }

    /// One bound: `>=`, `>`, `<`, `<=` or `=` a version.
    public struct Comparator: Sendable, Equatable {
        public enum Operator: String, Sendable { case atLeast = ">=", above = ">", below = "<", atMost = "<=", exactly = "=" }
        public var op: Operator
        public var version: Version
        func admits(_ candidate: Version) -> Bool {
            switch op {
            case .atLeast: candidate >= version
            case .above: candidate > version
            case .below: candidate < version
            case .atMost: candidate <= version
            case .exactly: candidate == version
            }
        }
    }

    /// Alternatives (`||`), each a set of comparators that must all hold; an empty set admits any version.
    public let alternatives: [[Comparator]]
    public let description: String

    public static let maxLength = 256

    public init(_ text: String) throws(PinError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard trimmed.utf8.count <= Self.maxLength else { throw PinError("is longer than \(Self.maxLength) characters") }
        guard trimmed.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 0x20 && $0.value < 0x7f }) else {
            throw PinError("holds characters no version range has")
        }
        description = trimmed
        var alternatives: [[Comparator]] = []
        for alternative in trimmed.components(separatedBy: "||") {
            alternatives.append(try Self.parseSet(alternative, whole: trimmed))
        }
        self.alternatives = alternatives
    }

    public func admits(_ version: Version) -> Bool {
        alternatives.contains { set in set.allSatisfy { $0.admits(version) } }
    }

    /// A version as written in a range: up to three parts, each a number or `x`/`X`/`*` (and missing parts wildcards).
    struct Partial {
        var parts: [Int?]  // major, minor, patch; nil is a wildcard
        var major: Int? { parts[0] }
        var minor: Int? { parts[1] }
        var patch: Int? { parts[2] }
        var floor: Version { Version(major ?? 0, minor ?? 0, patch ?? 0) }

        init(_ text: String, whole: String) throws(PinError) {
            var body = Substring(text)
            if body.hasPrefix("v") || body.hasPrefix("=") { body = body.dropFirst() }
            guard !body.contains("-"), !body.contains("+") else { throw PinError("\"\(whole)\": pre-release and build tags are not offered by any stack") }
            let pieces = body.split(separator: ".", omittingEmptySubsequences: false)
            guard (1...3).contains(pieces.count) else { throw PinError("\"\(whole)\" is not a version range (at \"\(text)\")") }
            var parts: [Int?] = []
            var sawWildcard = false
            for piece in pieces {
                if ["x", "X", "*"].contains(piece) {
                    sawWildcard = true
                    parts.append(nil)
                } else if let number = Int(piece), number >= 0, number < 1_000_000, piece.allSatisfy(\.isASCII), !sawWildcard {
                    parts.append(number)
                } else {
                    throw PinError("\"\(whole)\" is not a version range (at \"\(text)\")")
                }
            }
            while parts.count < 3 { parts.append(nil) }
            self.parts = parts
        }

        /// The first version past everything this partial names (`18` → 19.0.0, `18.2` → 18.3.0); nil for `*`.
        var ceiling: Version? {
            guard let major else { return nil }
            guard let minor else { return Version(major + 1, 0, 0) }
            guard let patch else { return Version(major, minor + 1, 0) }
            return Version(major, minor, patch + 1)
        }
    }

    private static func parseSet(_ text: String, whole: String) throws(PinError) -> [Comparator] {
        // `>= 18` is `>=18`: operators bind to the version after them.
        var words: [String] = []
        for word in text.split(separator: " ", omittingEmptySubsequences: true).map(String.init) {
            if let last = words.last, ["<", ">", "<=", ">=", "=", "~", "^", "~>"].contains(last) {
                words[words.count - 1] = last + word
            } else {
                words.append(word)
            }
        }
        if words.isEmpty { return [] }
        if words.count == 3, words[1] == "-" {  // a hyphen range
            let low = try Partial(words[0], whole: whole), high = try Partial(words[2], whole: whole)
            var set = [Comparator(op: .atLeast, version: low.floor)]
            if high.patch != nil { set.append(Comparator(op: .atMost, version: high.floor)) }
            else if let ceiling = high.ceiling { set.append(Comparator(op: .below, version: ceiling)) }
            return set
        }
        var set: [Comparator] = []
        for word in words { set += try comparators(word, whole: whole) }
        return set
    }

    private static func comparators(_ word: String, whole: String) throws(PinError) -> [Comparator] {
        for op in [">=", "<=", ">", "<"] where word.hasPrefix(op) {
            let partial = try Partial(String(word.dropFirst(op.count)), whole: whole)
            guard partial.major != nil else { return op == ">=" || op == "<=" ? [] : [Comparator(op: .below, version: Version(0, 0, 0))] }
            switch op {
            case ">=": return [Comparator(op: .atLeast, version: partial.floor)]
            case "<": return [Comparator(op: .below, version: partial.floor)]
            case ">": return [partial.patch != nil ? Comparator(op: .above, version: partial.floor) : Comparator(op: .atLeast, version: partial.ceiling!)]
            default: return [partial.patch != nil ? Comparator(op: .atMost, version: partial.floor) : Comparator(op: .below, version: partial.ceiling!)]
            }
        }
        if word.hasPrefix("~") {
            let partial = try Partial(String(word.dropFirst(word.hasPrefix("~>") ? 2 : 1)), whole: whole)
            guard let major = partial.major else { return [] }
            let ceiling = partial.minor.map { Version(major, $0 + 1, 0) } ?? Version(major + 1, 0, 0)
            return [Comparator(op: .atLeast, version: partial.floor), Comparator(op: .below, version: ceiling)]
        }
        if word.hasPrefix("^") {
            let partial = try Partial(String(word.dropFirst()), whole: whole)
            guard let major = partial.major else { return [] }
            let ceiling: Version
            if major > 0 || partial.minor == nil { ceiling = Version(major + 1, 0, 0) }
            else if let minor = partial.minor, minor > 0 || partial.patch == nil { ceiling = Version(0, minor + 1, 0) }
            else { ceiling = Version(0, 0, (partial.patch ?? 0) + 1) }
            return [Comparator(op: .atLeast, version: partial.floor), Comparator(op: .below, version: ceiling)]
        }
        let partial = try Partial(word, whole: whole)
        guard partial.major != nil else { return [] }
        if partial.patch != nil { return [Comparator(op: .exactly, version: partial.floor)] }
        return [Comparator(op: .atLeast, version: partial.floor), Comparator(op: .below, version: partial.ceiling!)]
    }
}

/// A runtime pin that cannot be read; the message names the file.
public struct PinError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
