#if canImport(Glibc)
import Glibc
#endif

/// Follows a symlink inside an exported tree the way the kernel will, one
/// component at a time, without ever looking outside the tree's root.
///
/// Why not compare the link's text: a link's `..` applies to where the links
/// before it led, not to the words before it, so `l -> ../../..` in `a/b/c`
/// and `db -> a/b/c/l/../../../gust.sqlite` each look inside and together
/// leave. A component that does not exist is taken as a plain directory (the
/// kernel would refuse to go through it, so this only errs towards refusing).
struct LinkResolver {
    /// The kernel's own bound on links followed in one lookup (MAXSYMLINKS).
    static let maxLinks = 40
    let root: String
    /// Components the links may still take to resolve, all of an export's together
    /// (`ExportLimits.maxLinkSteps`): one link's text of 4 KB can be two thousand `.`s, 40 of them
    /// in a chain, and git stores the directory holding them once however many times a tree names
    /// it. Unbounded, a push of a few kilobytes kept its hook resolving for days.
    private(set) var budget: Int

    init(root: String, budget: Int = ExportLimits().maxLinkSteps) {
        self.root = root
        self.budget = budget
    }

    enum Outcome: Equatable {
        case inside, leaves, overBudget
    }

    /// Whether the link at `link` (relative to the root) resolves to a path
    /// inside the root. A loop of links, or a chain longer than the kernel
    /// follows, counts as leaving.
    mutating func resolve(link: String) -> Outcome {
        let components = link.split(separator: "/").map(String.init)
        guard !components.isEmpty else { return .leaves }
        var resolved = Array(components.dropLast())
        // Next component last, so that taking one and putting a link's in its place cost what they
        // hold, not what is left.
        var pending = [components.last!]
        var followed = 0
        while let component = pending.popLast() {
            budget -= 1
            guard budget >= 0 else { return .overBudget }
            switch component {
            case "", ".":
                continue
            case "..":
                guard !resolved.isEmpty else { return .leaves }
                resolved.removeLast()
                continue
            default:
                break
            }
            let candidate = resolved + [component]
            switch destination(of: candidate) {
            case .notALink:
                resolved = candidate
            case .link(let text):
                followed += 1
                guard followed <= Self.maxLinks, !text.isEmpty, !text.hasPrefix("/") else { return .leaves }
                // Relative to the directory holding the link: `resolved`, as it stands.
                pending.append(contentsOf: text.split(separator: "/", omittingEmptySubsequences: true).reversed().map(String.init))
            case .unreadable:
                return .leaves
            }
        }
        return .inside
    }

    private enum Entry {
        case notALink, link(String), unreadable
    }

    private func destination(of components: [String]) -> Entry {
        let path = root + "/" + components.joined(separator: "/")
        var info = stat()
        guard lstat(path, &info) == 0 else { return errno == ENOENT || errno == ENOTDIR ? .notALink : .unreadable }
        guard info.st_mode & S_IFMT == S_IFLNK else { return .notALink }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count >= 0 else { return .unreadable }
        return .link(String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
}
