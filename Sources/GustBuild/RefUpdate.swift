/// One `old new ref` line that git gives a pre-receive hook on stdin.
public struct RefUpdate: Sendable, Equatable {
    public static let zero = String(repeating: "0", count: 40)
    public static let deployBranches = ["refs/heads/main", "refs/heads/master"]

    public var old: String
    public var new: String
    public var ref: String

    public init(old: String, new: String, ref: String) {
        self.old = old
        self.new = new
        self.ref = ref
    }

    /// Parses git's hook input; malformed lines are skipped, as git never sends them.
    public static func parse(_ input: String) -> [RefUpdate] {
        input.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count == 3 else { return nil }
            return RefUpdate(old: String(parts[0]), new: String(parts[1]), ref: String(parts[2]))
        }
    }

    public var isDeployBranch: Bool { Self.deployBranches.contains(ref) }
    public var isDeletion: Bool { new.allSatisfy { $0 == "0" } }
    public var isCreation: Bool { old.allSatisfy { $0 == "0" } }
    public var shortName: String {
        ref.hasPrefix("refs/heads/") ? String(ref.dropFirst("refs/heads/".count)) : ref
    }
}
