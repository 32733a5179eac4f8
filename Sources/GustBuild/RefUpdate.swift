public import GustCore

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

extension RefUpdate {
    /// Why Gust refuses this update, or nil. Tags named like releases (`v12`)
    /// are Gust's: it writes tag vN at release vN's commit, and a tag pushed
    /// ahead would name another. A branch named like a full ref
    /// (`refs/heads/refs/heads/main`) makes `main` ambiguous in every clone.
    /// Deleting such a branch is allowed, so a repository can be mended.
    public var refusal: GustError? {
        if ref.hasPrefix("refs/tags/") {
            let tag = ref.dropFirst("refs/tags/".count)
            guard tag.first == "v", tag.count > 1, tag.dropFirst().allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            return GustError(
                "The tag \(tag) is refused: tags named vN are Gust's, written at the commit release vN was built from.",
                hint: "Delete it with `git tag -d \(tag)` and choose another name (release-\(tag.dropFirst()), say); `git fetch --tags` brings Gust's."
            )
        }
        if ref.hasPrefix("refs/heads/refs/"), !isDeletion {
            let name = ref.dropFirst("refs/heads/".count)
            return GustError(
                "The branch name '\(name)' is refused: a branch named like a full ref breaks `git push` of the real one in every clone.",
                hint: "Push to the branch itself (`git push REMOTE HEAD:\(name)`), and delete the local one with `git branch -D \(name)`."
            )
        }
        return nil
    }
}
