#if canImport(Glibc)
import Glibc
#endif
public import Foundation

/// An artifact's file is shared by every release, of any app, built from the same slug, and a
/// build records its release only after it has packed (the push hook records it once the build's
/// answer reaches it). So an app's prune could remove an artifact another app's build had just
/// packed and not yet recorded, and that build's deploy then failed. A pack that finds its
/// artifact there marks it as just packed (its mtime set to now); a prune spares an artifact
/// marked after the release it prunes was recorded, for a day at most (a build whose release is
/// never recorded holds nothing for ever).
public enum ArtifactFile {
    /// How long a mark spares an artifact from a prune.
    public static let packGrace: TimeInterval = 86_400

    /// Marks the artifact at `file` as just packed; false when it is not there (any more).
    public static func markPacked(_ file: URL) -> Bool {
        utimensat(AT_FDCWD, file.path, nil, AT_SYMLINK_NOFOLLOW) == 0
    }

    /// Removes the artifact at `file` unless a pack marked it after `recorded` (within
    /// `packGrace` of `now`). Returns the bytes freed; nil when it was spared or not there.
    ///
    /// The file is renamed aside before its mark is read, so a pack either marked it before (and it
    /// is put back) or finds it gone and puts its own in place: no mark falls between the check
    /// and the removal.
    public static func remove(_ file: URL, unlessPackedAfter recorded: Date, now: Date = Date()) throws -> Int? {
        let aside = file.deletingLastPathComponent().appendingPathComponent(".prune-\(UUID().uuidString.prefix(8)).tmp")
        guard rename(file.path, aside.path) == 0 else {
            if errno == ENOENT { return nil }
            throw GustError("Cannot prune the artifact \(file.lastPathComponent): \(String(cString: strerror(errno)))")
        }
        var status = stat()
        guard lstat(aside.path, &status) == 0 else {
            throw GustError("Cannot read the artifact \(file.lastPathComponent) being pruned: \(String(cString: strerror(errno)))")
        }
        let marked = Date(timeIntervalSince1970: TimeInterval(status.st_mtim.tv_sec) + TimeInterval(status.st_mtim.tv_nsec) / 1e9)
        if marked > recorded, now.timeIntervalSince(marked) < packGrace {
            // Back in place; a pack that came meanwhile put the same bytes there already.
            if link(aside.path, file.path) != 0, errno != EEXIST {
                let reason = String(cString: strerror(errno))
                _ = rename(aside.path, file.path)
                throw GustError("Cannot put back the artifact \(file.lastPathComponent): \(reason)")
            }
            unlink(aside.path)
            return nil
        }
        unlink(aside.path)
        return Int(status.st_size)
    }

    /// Removes what a pack or a prune cut short left in `directory` (`.pack-*.tmp`, `.prune-*.tmp`)
    /// once it is older than `packGrace`: a pack in progress writes its file now, so it is never
    /// one of them.
    public static func sweepLeftovers(in directory: URL, now: Date = Date()) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return }
        for name in names where (name.hasPrefix(".pack-") || name.hasPrefix(".prune-")) && name.hasSuffix(".tmp") {
            let path = directory.appendingPathComponent(name).path
            var status = stat()
            guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { continue }
            if now.timeIntervalSince(Date(timeIntervalSince1970: TimeInterval(status.st_mtim.tv_sec))) > packGrace { unlink(path) }
        }
    }
}
