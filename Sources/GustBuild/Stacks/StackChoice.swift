public import GustCore

/// The language runtimes a stack offers, as a pin names them.
public enum StackRuntime: String, Sendable {
    case python, node

    public var displayName: String { self == .python ? "Python" : "Node" }

    /// The runtime a buildpack runs on.
    public init?(buildpack: String) { self.init(rawValue: buildpack) }

    /// The version `stack` offers of this runtime, if any.
    public func version(in stack: Stack) -> String? { self == .python ? stack.python : stack.node }
}

/// Which stack a build runs on: pure logic over the stacks there are, so that it is tested without any.
///
/// Only the newest version of each name is a candidate (older versions stay for the releases built on
/// them). Without a pin, the default stack. With one, the default stack if it satisfies the pin, else
/// the stack offering the highest satisfying version; none satisfying rejects the build, naming what
/// each stack offers.
public enum StackChoice {
    /// - Parameters:
    ///   - stacks: the newest version of each name (`StackCatalog.newest()`); empty: the host's system (nil).
    ///   - defaultName: the name a build uses unless a pin says otherwise (`StackDefaults`).
    public static func choose(
        runtime: StackRuntime?, pin: RuntimePin?, stacks: [Stack], defaultName: String?
    ) throws(GustError) -> Stack? {
        guard !stacks.isEmpty else { return nil }
        let preferred = stacks.first { $0.reference.name == defaultName } ?? stacks[0]
        guard let runtime else { return preferred }
        let offering = stacks.filter { runtime.version(in: $0) != nil }
        guard let pin else {
            if runtime.version(in: preferred) != nil { return preferred }
            guard let other = offering.first else {
                throw GustError("No stack offers \(runtime.displayName).", hint: "Build one with `gust stacks build` (it installs Python and Node).")
            }
            return other
        }
        let satisfying = offering.filter { admits(pin, runtime.version(in: $0)!) }
        if satisfying.contains(where: { $0.reference == preferred.reference }) { return preferred }
        if let best = satisfying.max(by: { order(runtime.version(in: $0)!, runtime.version(in: $1)!) }) { return best }
        throw GustError(
            "\(runtime.displayName) \(pin.requested) is pinned in \(pin.file); \(offered(runtime, by: offering)).",
            hint: "Pin a version a stack offers (or none), or ask an admin to build a stack that has it: gust stacks build NAME --suite SUITE"
        )
    }

    public static func admits(_ pin: RuntimePin, _ version: String) -> Bool {
        switch pin {
        case .python(let python, _): python.admits(version)
        case .node(let range, _): NodeVersionRange.Version(version).map(range.admits) ?? false
        }
    }

    /// "stacks offer Python 3.11.2 (bookworm@1) and 3.13.5 (trixie@1)".
    static func offered(_ runtime: StackRuntime, by stacks: [Stack]) -> String {
        let each = stacks.map { "\(runtime.version(in: $0)!) (\($0.reference))" }
        guard let last = each.last else { return "no stack offers \(runtime.displayName)" }
        let list = each.count == 1 ? last : each.dropLast().joined(separator: ", ") + " and " + last
        return "\(each.count == 1 ? "the only stack offers" : "stacks offer") \(runtime.displayName) \(list)"
    }

    /// Numeric order of dotted versions ("3.9.1" < "3.11.2").
    static func order(_ a: String, _ b: String) -> Bool {
        let x = a.split(separator: ".").map { Int($0) ?? 0 }, y = b.split(separator: ".").map { Int($0) ?? 0 }
        return x.lexicographicallyPrecedes(y)
    }
}
