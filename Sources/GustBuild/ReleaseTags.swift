public import GustCore
public import GustGit

/// Keeps the `vN` tags of an app's repository in step with its releases.
///
/// Run from post-receive (when the pushed objects have left git's quarantine,
/// so a tag never points at an object that a rejected push would discard) and
/// after a rollback or config release.
public enum ReleaseTags {
    /// Tags every built release whose commit is in the repository and whose tag
    /// is missing; returns the tags it created.
    @discardableResult
    public static func tagMissing(_ app: AppName, store: Store, repository: GitRepository) throws -> [String] {
        let existing = Set(try repository.tagNames())
        var created: [String] = []
        for release in try store.releases(app).reversed() where release.status != .failed {
            let name = "v\(release.version)"
            guard !existing.contains(name), let commit = release.commit,
                (try? repository.commitSummary(commit)) != nil
            else { continue }
            try repository.tag(name, at: commit, force: false)
            created.append(name)
        }
        return created
    }
}
