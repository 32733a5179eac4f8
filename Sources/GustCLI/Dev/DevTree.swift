#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GustCore

/// The files of a work tree as `gust dev` sees them: what a release is made
/// of, and their modification times, so that a poll tells what changed.
///
/// Left out: version control, what a build makes (`.venv`, `node_modules`,
/// `.gust`), caches, and `.env` (config, not code: it is read, not copied).
struct DevTree: Equatable {
    struct Stamp: Equatable {
        var modified: timespec
        var size: Int
        var mode: mode_t

        static func == (a: Stamp, b: Stamp) -> Bool {
            a.modified.tv_sec == b.modified.tv_sec && a.modified.tv_nsec == b.modified.tv_nsec && a.size == b.size && a.mode == b.mode
        }
    }

    /// Directory names never copied nor watched, wherever they are.
    static let skippedDirectories: Set<String> = [
        ".git", ".hg", ".svn", ".venv", "venv", "node_modules", ".gust", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".idea", ".vscode",
    ]
    /// Files never copied (still watched: `.env` is the config).
    static let configFile = ".env"
    /// Files whose change means installing dependencies again.
    static let dependencyFiles = ["requirements.txt", "package.json", "package-lock.json"]
    /// A bound on what one tree may hold, so a dev server pointed at `/` says so instead of copying it.
    static let maxFiles = 20_000

    /// Path relative to the tree → its stamp.
    var files: [String: Stamp] = [:]

    /// Reads the tree now.
    static func scan(_ root: URL) throws -> DevTree {
        var tree = DevTree()
        try tree.walk(root.path, relative: "")
        return tree
    }

    private mutating func walk(_ directory: String, relative: String) throws {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            if relative.isEmpty { throw GustError("Cannot read the work tree \(DevWorkspace.shown(directory)): \(error.localizedDescription)") }
            return  // a directory removed while it was read, or one we may not enter
        }
        for name in names.sorted() {
            let path = directory + "/" + name
            let key = relative.isEmpty ? name : relative + "/" + name
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                if Self.skippedDirectories.contains(name) { continue }
                try walk(path, relative: key)
            case S_IFREG, S_IFLNK:
                files[key] = Stamp(modified: info.st_mtim, size: Int(info.st_size), mode: info.st_mode)
                if files.count > Self.maxFiles {
                    throw GustError(
                        "The work tree holds more than \(Self.maxFiles) files: is \(DevWorkspace.shown(relative.isEmpty ? directory : String(directory.dropLast(relative.count + 1)))) your app's directory?"
                    )
                }
            default:
                continue  // sockets, fifos, devices: not code
            }
        }
    }

    /// The tree once it holds still: after a change was seen in `seen`, scans again every `pause`
    /// until two scans in a row agree, at most `rounds` times (a tree that never holds still is
    /// taken as it is then). An editor that saves in place truncates the file and then writes it;
    /// a scan between the two must not become a release.
    static func settled(
        _ seen: DevTree, pause: Duration, rounds: Int = 40, scan: () throws -> DevTree, sleep: (Duration) async -> Void
    ) async throws -> DevTree {
        var last = seen
        for _ in 0..<rounds {
            await sleep(pause)
            let now = try scan()
            if now == last { return now }
            last = now
        }
        return last
    }

    /// The paths that differ from `old`, sorted.
    func changes(since old: DevTree) -> [String] {
        var changed = Set<String>()
        for (path, stamp) in files where old.files[path] != stamp { changed.insert(path) }
        for path in old.files.keys where files[path] == nil { changed.insert(path) }
        return changed.sorted()
    }

    /// Copies the tree's files (not `.env`) into `destination`, a new directory:
    /// the release is a snapshot, so an edit saved later never changes code that serves.
    func copy(from root: URL, to destination: URL) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: destination, withIntermediateDirectories: true)
        var made: Set<String> = [""]
        for path in files.keys.sorted() where path != Self.configFile {
            let parent = (path as NSString).deletingLastPathComponent
            if !made.contains(parent) {
                try fm.createDirectory(at: destination.appendingPathComponent(parent), withIntermediateDirectories: true)
                made.insert(parent)
            }
            let target = destination.appendingPathComponent(path)
            do {
                try fm.copyItem(at: root.appendingPathComponent(path), to: target)
            } catch where !fm.fileExists(atPath: root.appendingPathComponent(path).path) {
                continue  // removed since the scan: the next poll sees it
            }
        }
    }
}
