public import Foundation
public import GustCore

/// What one push may leave in its app's repository, checked by pre-receive before anything of the
/// push is built or kept. Every branch and tag counts, not only the one that deploys: git keeps
/// what any ref names, and the repository lies on the server's disk beside every other app's.
///
/// git writes a push's objects into a quarantine (`GIT_QUARANTINE_PATH`, inside the repository's
/// `objects`) and keeps them only once pre-receive accepts; refused, they are deleted. So the
/// repository measured here includes what the push brings. The pack stream itself is cut at the
/// same bound while it arrives (`receive.maxInputSize`, which `gust ssh-command` gives git), so the
/// quarantine never grows past it either.
public enum PushBounds {
    /// Refs one push may create, move or delete (each is a file of the repository's, and a line of
    /// pre-receive's input).
    public static let maxRefUpdates = 1_000

    public static func checkRefCount(_ updates: [RefUpdate]) throws {
        guard updates.count > maxRefUpdates else { return }
        throw GustError(
            "The push updates \(updates.count) branches and tags; at most \(maxRefUpdates) go in one push. Nothing of it was kept.",
            hint: "Push them in smaller groups (`git push REMOTE BRANCH…`)."
        )
    }

    /// Refuses a push that brings objects and leaves `repository` over `limit` bytes (the app's disk
    /// limit). A push that brings none (deleting a branch, say) passes, so that a repository already
    /// over a lowered limit can still be tidied.
    public static func checkSize(of repository: URL, quarantine: String?, limit: Int?, app: AppName) throws {
        guard let limit, let quarantine, holdsFiles(URL(fileURLWithPath: quarantine)) else { return }
        let size = DiskUsage.of(repository)
        guard size > limit else { return }
        throw GustError(
            "The push would leave \(app)'s repository at \(LimitSize.spoken(size)), over its disk limit (\(LimitSize.spoken(limit))): it was refused, and nothing of it was kept.",
            hint: "Keep large files out of the history (a file once committed stays in it; `git filter-repo` takes it out), or ask an admin to raise the limit: gust limits \(app) --disk SIZE"
        )
    }

    /// Whether a regular file lies anywhere under `directory`: git makes the quarantine's
    /// directories before it knows whether any object comes.
    static func holdsFiles(_ directory: URL) -> Bool {
        guard let walker = FileManager.default.enumerator(atPath: directory.path) else { return false }
        while walker.nextObject() != nil {
            if walker.fileAttributes?[.type] as? FileAttributeType == .typeRegular { return true }
        }
        return false
    }
}
