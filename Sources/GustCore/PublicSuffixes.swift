import Foundation

/// The Public Suffix List (publicsuffix.org, Debian's `publicsuffix`): the names under which
/// anyone may register their own (`com`, `co.uk`, `github.io`). No app may have one as a domain:
/// an app holding `co.uk` would, by the rule that names under an app's domain are that app's,
/// keep every other tenant from every name under it, and no one's certificate could be issued
/// for it anyway.
public struct PublicSuffixes: Sendable {
    /// Where Debian's `publicsuffix` puts the list (scripts/install-deps.sh installs it).
    public static let standardPath = "/usr/share/publicsuffix/public_suffix_list.dat"

    /// The list at `standardPath`, read once per process; nil where it is not installed.
    public static let standard: PublicSuffixes? = (try? String(contentsOfFile: standardPath, encoding: .utf8)).map(PublicSuffixes.init(list:))

    private var rules: Set<String> = []
    /// `*.ck`: every name one label under `ck` is a suffix (stored as `ck`).
    private var wildcards: Set<String> = []
    /// `!www.ck`: but this one is not.
    private var exceptions: Set<String> = []

    /// Reads the list's text: a rule per line, `//` comments, the first word of a line only. The
    /// list writes internationalised names in Unicode (`公司.cn`); a `DomainName` is in the ASCII
    /// form DNS and certificates use (`xn--55qx5d.cn`), so each rule is kept in that form.
    public init(list: String) {
        for line in list.split(whereSeparator: \.isNewline) {
            guard let rule = line.split(whereSeparator: \.isWhitespace).first, !rule.hasPrefix("//"),
                  let lowered = Punycode.asciiName(rule.lowercased())
            else { continue }
            if lowered.hasPrefix("!") {
                exceptions.insert(String(lowered.dropFirst()))
            } else if lowered.hasPrefix("*.") {
                wildcards.insert(String(lowered.dropFirst(2)))
            } else {
                rules.insert(lowered)
            }
        }
    }

    /// Whether `name` is a public suffix itself (not a name registered under one).
    public func isSuffix(_ name: DomainName) -> Bool {
        let raw = name.rawValue
        if exceptions.contains(raw) { return false }
        if rules.contains(raw) { return true }
        guard let dot = raw.firstIndex(of: ".") else { return true }  // a bare label: the list's default rule `*`
        return wildcards.contains(String(raw[raw.index(after: dot)...]))
    }
}
