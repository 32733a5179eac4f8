#if canImport(Glibc)
import Glibc
#endif
import CGit2
public import Foundation

/// How much of a tree Gust will export before calling it absurd.
public struct ExportLimits: Sendable {
    public var maxFiles = 50_000
    /// Files, directories and links together. Git stores a tree once however often it is named, so
    /// a few kilobytes of trees that name each other ten times a level make a million directories.
    public var maxEntries = 100_000
    public var maxFileBytes = 100 * 1024 * 1024
    public var maxTotalBytes = 1024 * 1024 * 1024
    /// Steps all of the tree's links may take to resolve (`LinkResolver`): one link's text can be
    /// 2,000 `/.`, 40 links chain, and a directory named many times is stored once.
    public var maxLinkSteps = 2_000_000

    public init() {}
}

public struct ExportSummary: Sendable, Equatable {
    public var files: Int
    public var bytes: Int
    /// The commit's time (seconds since the epoch), which every exported path carries as its mtime.
    public var commitTime: Int
}

extension GitRepository {
    /// Writes the tree of `commit` into `directory` (existing and empty):
    /// files with their executable bit, directories, and symlinks that stay
    /// inside the tree. Refuses symlinks that leave it, submodules and trees
    /// past `limits`, naming the path. Every file gets the commit's time as its
    /// mtime, so the same commit always exports the same bytes.
    public func export(commit id: String, to directory: URL, limits: ExportLimits = .init()) throws(GitError) -> ExportSummary {
        let commit = try lookupCommit(id)
        defer { git_commit_free(commit) }
        var tree: OpaquePointer?
        try GitError.check(git_commit_tree(&tree, commit), "Cannot read the tree of \(id.prefix(7))")
        defer { git_tree_free(tree) }
        var export = TreeExport(repository: handle, root: directory.path, limits: limits)
        try export.write(tree!, relative: "")
        try export.checkLinks()
        let time = git_commit_time(commit)
        export.stamp(time: time)
        return ExportSummary(files: export.files, bytes: export.bytes, commitTime: Int(time))
    }
}

/// One export in progress.
struct TreeExport {
    let repository: OpaquePointer
    let root: String
    let limits: ExportLimits
    var files = 0
    var bytes = 0
    var entries = 0
    /// Everything written, to stamp with the commit time at the end.
    var written: [String] = []
    /// Every symlink written (relative path and target), checked once the whole tree is there.
    var links: [(path: String, destination: String)] = []

    init(repository: OpaquePointer, root: String, limits: ExportLimits) {
        self.repository = repository
        self.root = root
        self.limits = limits
    }

    mutating func write(_ tree: OpaquePointer, relative: String) throws(GitError) {
        for index in 0..<git_tree_entrycount(tree) {
            let entry = git_tree_entry_byindex(tree, index)!
            let name = String(cString: git_tree_entry_name(entry))
            let path = relative.isEmpty ? name : "\(relative)/\(name)"
            // Git never stores these, but a crafted tree could: never write outside the export.
            guard !name.isEmpty, name != ".", name != "..", name != ".git", !name.contains("/") else {
                throw GitError("'\(path)' is not a path Gust can export.")
            }
            let target = "\(root)/\(path)"
            entries += 1
            guard entries <= limits.maxEntries else {
                throw GitError(
                    "The repository's tree holds more than \(limits.maxEntries) files, directories and links, more than Gust deploys. Remove what the app does not need."
                )
            }
            switch git_tree_entry_filemode(entry) {
            case GIT_FILEMODE_TREE:
                guard mkdir(target, 0o755) == 0 else { throw systemError("create directory", path) }
                written.append(target)
                var subtree: OpaquePointer?
                try GitError.check(git_tree_lookup(&subtree, repository, git_tree_entry_id(entry)), "Cannot read '\(path)'")
                defer { git_tree_free(subtree) }
                try write(subtree!, relative: path)
            case GIT_FILEMODE_BLOB, GIT_FILEMODE_BLOB_EXECUTABLE:
                let executable = git_tree_entry_filemode(entry) == GIT_FILEMODE_BLOB_EXECUTABLE
                try writeFile(entry, path: path, target: target, mode: executable ? 0o755 : 0o644)
            case GIT_FILEMODE_LINK:
                try writeLink(entry, path: path, target: target)
            case GIT_FILEMODE_COMMIT:
                throw GitError("'\(path)' is a git submodule; Gust cannot build submodules: vendor the code into the repository instead.")
            default:
                throw GitError("'\(path)' has a file mode Gust does not know.")
            }
        }
    }

    private mutating func writeFile(_ entry: OpaquePointer, path: String, target: String, mode: mode_t) throws(GitError) {
        // Its size from the object's header, before the blob is read whole: a few kilobytes in the
        // pack can be gigabytes of zeros, inflated into memory by a lookup.
        let size = try blobSize(entry, path: path)
        files += 1
        bytes += size
        guard files <= limits.maxFiles else {
            throw GitError("The repository has more than \(limits.maxFiles) files, more than Gust deploys. Remove what the app does not need.")
        }
        guard size <= limits.maxFileBytes else {
            throw GitError("'\(path)' is \(size / 1_048_576) MiB, over Gust's limit of \(limits.maxFileBytes / 1_048_576) MiB per file. Keep large files out of the repository.")
        }
        guard bytes <= limits.maxTotalBytes else {
            throw GitError("The repository's files add up to more than \(limits.maxTotalBytes / 1_048_576) MiB, over Gust's limit.")
        }
        let blob = try lookupBlob(entry, path: path)
        defer { git_blob_free(blob) }
        guard Int(git_blob_rawsize(blob)) == size else { throw GitError("'\(path)' is not the size its object says.") }
        let fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw systemError("create", path) }
        defer { close(fd) }
        var offset = 0
        let content = git_blob_rawcontent(blob)
        while offset < size {
            let count = Glibc.write(fd, content! + offset, size - offset)
            if count < 0 {
                if errno == EINTR { continue }
                throw systemError("write", path)
            }
            offset += count
        }
        fchmod(fd, mode)  // the umask must not drop the executable bit
        written.append(target)
    }

    /// The longest target a link may have: PATH_MAX less its NUL, past which `symlink(2)` refuses.
    static let maxLinkTarget = 4095

    private mutating func writeLink(_ entry: OpaquePointer, path: String, target: String) throws(GitError) {
        // Its size from the header first, as a file's: a target of gigabytes of one byte is a few
        // kilobytes in the pack, and would be inflated whole to be refused by `symlink(2)`.
        let size = try blobSize(entry, path: path)
        guard size <= Self.maxLinkTarget else {
            throw GitError("'\(path)' is a symlink whose target is \(size) bytes; a symlink's target may be at most \(Self.maxLinkTarget) bytes.")
        }
        let blob = try lookupBlob(entry, path: path)
        defer { git_blob_free(blob) }
        let raw = UnsafeRawBufferPointer(start: git_blob_rawcontent(blob), count: Int(git_blob_rawsize(blob)))
        let destination = String(decoding: raw, as: UTF8.self)
        // Refused at once when the text alone leaves; the rest is resolved once every link exists.
        guard !destination.isEmpty, !destination.hasPrefix("/"), !destination.utf8.contains(0) else {
            throw Self.escaping(path, destination)
        }
        guard symlink(destination, target) == 0 else { throw systemError("create symlink", path) }
        written.append(target)
        links.append((path, destination))
    }

    /// Resolves every exported link as the kernel will, through the links the
    /// tree holds, and refuses any that leaves the root (checking the text
    /// alone lets `l -> ../../..` and `db -> a/l/../../../x` pass).
    func checkLinks() throws(GitError) {
        var resolver = LinkResolver(root: root, budget: limits.maxLinkSteps)
        for link in links {
            switch resolver.resolve(link: link.path) {
            case .inside: continue
            case .leaves: throw Self.escaping(link.path, link.destination)
            case .overBudget:
                throw GitError(
                    "The repository's symlinks take more than \(limits.maxLinkSteps) steps to resolve (the last one tried: '\(link.path)'); replace long chains of links with the files they point to."
                )
            }
        }
    }

    private static func escaping(_ path: String, _ destination: String) -> GitError {
        GitError("'\(path)' is a symlink to '\(destination)', which resolves outside the repository; replace it with the file it points to.")
    }

    /// A blob's size as its object's header says, without inflating it.
    private func blobSize(_ entry: OpaquePointer, path: String) throws(GitError) -> Int {
        var odb: OpaquePointer?
        try GitError.check(git_repository_odb(&odb, repository), "Cannot read '\(path)'")
        defer { git_odb_free(odb) }
        var size = 0
        var type = GIT_OBJECT_ANY
        try GitError.check(git_odb_read_header(&size, &type, odb, git_tree_entry_id(entry)), "Cannot read '\(path)'")
        guard type == GIT_OBJECT_BLOB else { throw GitError("'\(path)' is not a file in the repository.") }
        return size
    }

    private func lookupBlob(_ entry: OpaquePointer, path: String) throws(GitError) -> OpaquePointer {
        var blob: OpaquePointer?
        try GitError.check(git_blob_lookup(&blob, repository, git_tree_entry_id(entry)), "Cannot read '\(path)'")
        return blob!
    }

    /// Sets every exported path's mtime (not following links) to the commit time.
    func stamp(time: git_time_t) {
        var times = [timespec(tv_sec: Int(time), tv_nsec: 0), timespec(tv_sec: Int(time), tv_nsec: 0)]
        for path in written.reversed() {
            utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW)
        }
        utimensat(AT_FDCWD, root, &times, AT_SYMLINK_NOFOLLOW)
    }

    private func systemError(_ action: String, _ path: String) -> GitError {
        GitError(code: errno, "Cannot \(action) '\(path)': \(String(cString: strerror(errno)))")
    }
}
