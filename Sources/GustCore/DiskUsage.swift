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
        /// Whether the tree goes deeper than the walk descends (`maxDepth`): what lies below was not
        /// counted, so a bound must take the tree as over it.
        public var isTooDeep = false
    }

    /// Bytes under `root`, `root` itself included; 0 for a root that is not there. A tree deeper than
    /// the walk descends measures as over any bound (`Int.max / 4`): what it hides was not counted.
    public static func of(_ root: URL, _ measure: Measure = .allocated) -> Int {
        let tally = tally(root, measure)
        return tally.isTooDeep ? Int.max / 4 : tally.bytes
    }

    public static func tally(_ root: URL, _ measure: Measure = .allocated) -> Tally {
        var seen = Set<[UInt64]>()
        var tally = Tally()
        func count(_ info: stat, relativeBytes: Int) {
            tally.entries += 1
            tally.pathBytes += relativeBytes
            let isFile = (info.st_mode & S_IFMT) == S_IFREG
            if measure == .allocated, isFile, info.st_nlink > 1,
                !seen.insert([UInt64(info.st_dev), UInt64(info.st_ino)]).inserted { return }
            var bytes = Int(info.st_blocks) * 512
            if measure == .unpacked, isFile { bytes = max(bytes, Int(info.st_size)) }
            tally.bytes += max(512, bytes)
        }
        var info = stat()
        guard lstat(root.path, &info) == 0 else { return tally }
        count(info, relativeBytes: 0)
        guard (info.st_mode & S_IFMT) == S_IFDIR else { return tally }
        let top = open(root.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard top >= 0, let opened = fdopendir(top) else {
            if top >= 0 { close(top) }
            return tally
        }
        // Walked by names as bytes, each directory opened from its parent's descriptor: a name that
        // is no UTF-8 (a build makes what names it likes) made as a string and back names nothing,
        // and what lay below it went uncounted. No list of the tree is held, only the open path.
        var open: [(directory: OpaquePointer, descriptor: Int32, pathBytes: Int)] = [(opened, top, 0)]
        while let (directory, descriptor, prefix) = open.last {
            guard let entry = readdir(directory) else {
                closedir(directory)
                open.removeLast()
                continue
            }
            withUnsafeBytes(of: entry.pointee.d_name) { raw in
                let name = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
                let length = strlen(name)
                if length == 1 && name[0] == 0x2E || length == 2 && name[0] == 0x2E && name[1] == 0x2E { return }
                var info = stat()
                guard fstatat(descriptor, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return }
                let pathBytes = prefix == 0 ? length : prefix + 1 + length
                count(info, relativeBytes: pathBytes)
                guard (info.st_mode & S_IFMT) == S_IFDIR else { return }
                guard open.count < maxDepth else {
                    tally.isTooDeep = true
                    return
                }
                let child = openat(descriptor, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else { return }
                guard let below = fdopendir(child) else {
                    close(child)
                    return
                }
                open.append((below, child, pathBytes))
            }
        }
        return tally
    }

    /// How deep the walk descends: each level holds a descriptor open. A directory below it counts
    /// as itself, and marks the tree `isTooDeep` (a path that deep is past what any system call
    /// takes by name, and no build needs one).
    public static let maxDepth = 4096
}
