import CGit2
public import Foundation

/// An open repository: the one owner of a `git_repository` handle.
///
/// Opening is quarantine-aware. While a pre-receive hook runs, git keeps the
/// pushed objects in a quarantine directory and tells the hook where through
/// `GIT_QUARANTINE_PATH`, `GIT_OBJECT_DIRECTORY` and
/// `GIT_ALTERNATE_OBJECT_DIRECTORIES`; libgit2 reads none of these, so they are
/// added to the object database as alternates, or the pushed commit is not found.
public final class GitRepository {
    let handle: OpaquePointer
    public let path: String

    public init(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(GitError) {
        _ = Libgit2.initialised
        var repository: OpaquePointer?
        try GitError.check(git_repository_open(&repository, path), "Cannot open the repository at \(path)")
        handle = repository!
        self.path = path
        try addObjectDirectories(from: environment)
    }

    private init(handle: OpaquePointer, path: String) {
        self.handle = handle
        self.path = path
    }

    deinit {
        git_repository_free(handle)
    }

    /// A new bare repository whose HEAD names `initialBranch` (libgit2's own default is `master`;
    /// a clone checks out HEAD, so it should be the branch people deploy).
    public static func initBare(at path: String, initialBranch: String = "main") throws(GitError) -> GitRepository {
        _ = Libgit2.initialised
        var options = git_repository_init_options()
        try GitError.check(git_repository_init_options_init(&options, UInt32(GIT_REPOSITORY_INIT_OPTIONS_VERSION)), "Cannot set up libgit2")
        options.flags = GIT_REPOSITORY_INIT_BARE.rawValue | GIT_REPOSITORY_INIT_MKPATH.rawValue
        var repository: OpaquePointer?
        let status = initialBranch.withCString { head in
            options.initial_head = head
            return git_repository_init_ext(&repository, path, &options)
        }
        try GitError.check(status, "Cannot create a bare repository at \(path)")
        return GitRepository(handle: repository!, path: path)
    }

    /// Whether HEAD names a branch that has no commit (a fresh repository, or
    /// one whose pushes went to another branch).
    public var headIsUnborn: Bool { git_repository_head_unborn(handle) == 1 }

    /// Points HEAD at `reference` (`refs/heads/master`).
    public func pointHead(at reference: String) throws(GitError) {
        try GitError.check(git_repository_set_head(handle, reference), "Cannot point HEAD at \(reference)")
    }

    private func addObjectDirectories(from environment: [String: String]) throws(GitError) {
        var directories: [String] = []
        for key in ["GIT_QUARANTINE_PATH", "GIT_OBJECT_DIRECTORY"] {
            if let value = environment[key], !value.isEmpty { directories.append(value) }
        }
        if let alternates = environment["GIT_ALTERNATE_OBJECT_DIRECTORIES"] {
            directories += alternates.split(separator: ":").map(String.init)
        }
        guard !directories.isEmpty else { return }
        var odb: OpaquePointer?
        try GitError.check(git_repository_odb(&odb, handle), "Cannot read the object database of \(path)")
        defer { git_odb_free(odb) }
        var seen = Set<String>()
        for directory in directories {
            let absolute = directory.hasPrefix("/") ? directory : FileManager.default.currentDirectoryPath + "/" + directory
            var isDirectory: ObjCBool = false
            guard seen.insert(absolute).inserted,
                FileManager.default.fileExists(atPath: absolute, isDirectory: &isDirectory), isDirectory.boolValue
            else { continue }
            try GitError.check(git_odb_add_disk_alternate(odb, absolute), "Cannot read pushed objects in \(absolute)")
        }
    }

    /// The object a reference points at, e.g. `refs/heads/main`, or nil if there is none.
    public func resolve(reference: String) throws(GitError) -> String? {
        var oid = git_oid()
        let code = git_reference_name_to_id(&oid, handle, reference)
        if code == GIT_ENOTFOUND.rawValue { return nil }
        try GitError.check(code, "Cannot read \(reference)")
        return oid.hex
    }

    /// A commit's message and time; throws if the commit is not in the repository.
    public func commitSummary(_ id: String) throws(GitError) -> (message: String, time: Date) {
        let commit = try lookupCommit(id)
        defer { git_commit_free(commit) }
        let message = git_commit_message(commit).map { String(cString: $0) } ?? ""
        return (message, Date(timeIntervalSince1970: TimeInterval(git_commit_time(commit))))
    }

    /// Creates (or with `force`, moves) the lightweight tag `name` at `commit`.
    public func tag(_ name: String, at commit: String, force: Bool) throws(GitError) {
        var oid = try GitOID(commit).raw
        var object: OpaquePointer?
        try GitError.check(git_object_lookup(&object, handle, &oid, GIT_OBJECT_COMMIT), "Cannot find commit \(commit.prefix(7))")
        defer { git_object_free(object) }
        var created = git_oid()
        try GitError.check(git_tag_create_lightweight(&created, handle, name, object, force ? 1 : 0), "Cannot tag \(name)")
    }

    /// Whether `commit` is `tip` or one of its ancestors; false for a commit
    /// the repository does not hold (the objects of a push git refused).
    public func isReachable(_ commit: String, from tip: String) -> Bool {
        guard var wanted = try? GitOID(commit).raw, var head = try? GitOID(tip).raw else { return false }
        if git_oid_equal(&wanted, &head) != 0 { return true }
        return git_graph_descendant_of(handle, &head, &wanted) == 1
    }

    public func tagNames() throws(GitError) -> [String] {
        var names = git_strarray()
        try GitError.check(git_tag_list(&names, handle), "Cannot list tags")
        defer { git_strarray_dispose(&names) }
        return (0..<names.count).compactMap { names.strings[$0].map { String(cString: $0) } }
    }

    func lookupCommit(_ id: String) throws(GitError) -> OpaquePointer {
        var oid = try GitOID(id).raw
        var commit: OpaquePointer?
        try GitError.check(git_commit_lookup(&commit, handle, &oid), "Commit \(id.prefix(7)) is not in the repository")
        return commit!
    }
}

/// A parsed object id.
struct GitOID {
    var raw = git_oid()

    init(_ hex: String) throws(GitError) {
        guard hex.count == 40, git_oid_fromstr(&raw, hex) == 0 else {
            throw GitError("'\(hex.prefix(64))' is not a commit id.")
        }
    }
}

extension git_oid {
    var hex: String {
        var copy = self
        var buffer = [CChar](repeating: 0, count: 41)
        git_oid_tostr(&buffer, buffer.count, &copy)
        return String(decoding: buffer.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
