#if canImport(Glibc)
import Glibc
#endif
public import Foundation

/// How much of the disk a tree takes, for the bounds that hold what an app's push, build or stack
/// leaves behind (its repository, build cache and slug; a stack's root). Links are not followed,
/// and every entry counts at least one block: a million empty files are not nothing, though they
/// hold no data.
public enum DiskUsage {
    public enum Measure: Sendable {
        /// The blocks the tree holds now: a file linked twice counts once.
        case allocated
        /// What writing the tree out again takes, as an archive's reader does: a sparse file's holes
        /// too, and every link to a file in full (an archive carries each as a copy of its data).
        case unpacked
    }

    /// What a walk of a tree found.
    public struct Tally: Sendable, Equatable {
        public var bytes = 0
        /// Entries of any kind, the root included.
        public var entries = 0
        /// The lengths of all the entries' paths below the root, in bytes: what a list of the tree's
        /// names takes in memory.
        public var pathBytes = 0
    }

    /// Bytes under `root`, `root` itself included; 0 for a root that is not there.
    public static func of(_ root: URL, _ measure: Measure = .allocated) -> Int {
        tally(root, measure).bytes
    }

    public static func tally(_ root: URL, _ measure: Measure = .allocated) -> Tally {
        var seen = Set<[UInt64]>()
        var tally = Tally()
        func count(_ path: String, relativeBytes: Int) {
            var info = stat()
            guard lstat(path, &info) == 0 else { return }
            tally.entries += 1
            tally.pathBytes += relativeBytes
            let isFile = (info.st_mode & S_IFMT) == S_IFREG
            if measure == .allocated, isFile, info.st_nlink > 1,
                !seen.insert([UInt64(info.st_dev), UInt64(info.st_ino)]).inserted { return }
            var bytes = Int(info.st_blocks) * 512
            if measure == .unpacked, isFile { bytes = max(bytes, Int(info.st_size)) }
            tally.bytes += max(512, bytes)
        }
        let base = root.path
        guard FileManager.default.fileExists(atPath: base) else { return tally }
        count(base, relativeBytes: 0)
        // Walked lazily: a tree of a million entries is never held as one list of names.
        guard let walker = FileManager.default.enumerator(atPath: base) else { return tally }
        while let relative = walker.nextObject() as? String {
            count(base + "/" + relative, relativeBytes: relative.utf8.count)
        }
        return tally
    }
}
