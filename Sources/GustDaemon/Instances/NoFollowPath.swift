#if canImport(Glibc)
import Glibc
#endif
import CGustSystem
import GustCore
import Foundation

/// Glibc's Swift overlay leaves it out (it needs _GNU_SOURCE).
private let O_PATH = gust_o_path()

/// Paths below a directory gustd owns (`run/instances`) that pass through directories an app's
/// code can write in. An instance's or zygote's socket directory is bound writable at `/run/gust`
/// in its sandbox, and a fork's is a directory inside its zygote's: the app can put a symbolic
/// link anywhere in them (`instance.sock -> ../../gustd.sock`), and a path handed to connect(2),
/// chmod(2), link(2) or a recursive removal would follow it out, to gustd's admin socket, another
/// app's instance or any file gustd's user may write. So every component below the trusted
/// directory is opened on its own, relative to the one above, with `O_NOFOLLOW`: a link anywhere
/// fails the walk instead of being followed.
enum NoFollowPath {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// A descriptor of `path`, which is `base` followed by one or more components, opened with
    /// `flags` (and `O_NOFOLLOW`); every directory on the way is opened with `O_NOFOLLOW` too. The
    /// caller closes it.
    static func open(_ path: String, below base: String, flags: Int32) throws -> Int32 {
        try walk(components(of: path, below: base)[...], from: base, path: path, flags: flags)
    }

    /// `base`, then each of `components` relative to the one before, the last with `flags`;
    /// `base` itself (a directory gustd owns) when there are none.
    private static func walk(_ components: ArraySlice<String>, from base: String, path: String, flags: Int32) throws -> Int32 {
        var directory = Glibc.open(base, O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { throw Failure(description: "cannot open \(base): \(String(cString: strerror(errno)))") }
        for (index, component) in zip(components.indices, components) {
            let last = index == components.index(before: components.endIndex)
            let next = openat(directory, component, (last ? flags : O_PATH | O_DIRECTORY) | O_NOFOLLOW | O_CLOEXEC)
            let error = errno
            close(directory)
            guard next >= 0 else {
                throw Failure(description: error == ELOOP || error == ENOTDIR
                    ? "\(path) leads through a symbolic link, which gustd does not follow"
                    : "cannot open \(path): \(String(cString: strerror(error)))")
            }
            directory = next
        }
        return directory
    }

    /// The directory `path` is in, opened by `walk`, and `path`'s last component.
    private static func parent(of path: String, below base: String) throws -> (descriptor: Int32, name: String) {
        let components = try components(of: path, below: base)
        return (try walk(components.dropLast(), from: base, path: path, flags: O_PATH | O_DIRECTORY), components[components.count - 1])
    }

    /// A socket below `base`, held open (`O_PATH`) so that connect(2) reaches that very socket by
    /// `address` (`/proc/self/fd/N`) and nothing a link could name in its place. Close it once the
    /// connect is done.
    struct Socket: Sendable {
        let descriptor: Int32
        var address: String { "/proc/self/fd/\(descriptor)" }
        func close() { _ = Glibc.close(descriptor) }
    }

    static func socket(_ path: String, below base: String) throws -> Socket {
        let descriptor = try open(path, below: base, flags: O_PATH)
        guard gust_is_socket(descriptor) == 1 else {
            Glibc.close(descriptor)
            throw Failure(description: "\(path) is not a socket")
        }
        return Socket(descriptor: descriptor)
    }

    /// A Unix socket bound at `path` and listening, for gustd to hand to the instance that serves on
    /// it (`GUST_LISTEN_FD`): the instance needs no write access to its socket directory. Bound
    /// through the directory's descriptor (`/proc/self/fd/N/NAME`), like `socket`, so that nothing
    /// is bound where a link in the directory points. A file left at `path` (a fork that failed,
    /// whose instance then starts on its own at the same path) is replaced. Close-on-exec; the
    /// caller closes it.
    static func listeningSocket(_ path: String, below base: String, backlog: Int32 = 64) throws -> Int32 {
        let (parent, name) = try parent(of: path, below: base)
        defer { close(parent) }
        _ = unlinkat(parent, name, 0)
        let listener = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw Failure(description: "cannot make a socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let local = "/proc/self/fd/\(parent)/\(name)"
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard local.utf8.count < capacity else {
            close(listener)
            throw Failure(description: "\(path)'s name is too long for a socket")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { bytes in
            bytes.copyBytes(from: local.utf8)
            bytes[local.utf8.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, Glibc.listen(listener, backlog) == 0 else {
            let error = errno
            close(listener)
            throw Failure(description: "cannot listen on \(path): \(String(cString: strerror(error)))")
        }
        return listener
    }

    /// Makes the directory `path` (its parent must exist) with `mode`, and a hard link named
    /// `linkName` in it to `source` (a file gustd owns, named by a path the app cannot touch). The
    /// mode and the link are set through the new directory's descriptor, so that an app that swaps
    /// it for a link between the two steps gets its own directory changed, or the step fails.
    static func makeDirectory(_ path: String, below base: String, mode: mode_t, linking source: String, as linkName: String) throws {
        let (parent, name) = try parent(of: path, below: base)
        defer { close(parent) }
        guard mkdirat(parent, name, 0o700) == 0 else { throw Failure(description: "cannot make \(path): \(String(cString: strerror(errno)))") }
        let directory = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard directory >= 0 else { throw Failure(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(directory) }
        guard fchmod(directory, mode) == 0, linkat(AT_FDCWD, source, directory, linkName, 0) == 0 else {
            throw Failure(description: "cannot set up \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Removes `path` and, if it is a directory, all it holds, never following a link: each level
    /// is opened relative to the one above with `O_NOFOLLOW`, and a link is removed as itself.
    /// Quietly does what it can (an instance's leftovers; gone already is fine).
    static func remove(_ path: String, below base: String) {
        guard let (parent, name) = try? parent(of: path, below: base) else { return }
        defer { close(parent) }
        name.withCString { NoFollowRemoval.remove($0, in: parent) }
    }

    /// The components of `path` below `base`: each non-empty, never `.` or `..`.
    private static func components(of path: String, below base: String) throws -> [String] {
        guard path.hasPrefix(base + "/") else { throw Failure(description: "\(path) is not below \(base)") }
        let components = path.dropFirst(base.count + 1).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !components.isEmpty, components.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else {
            throw Failure(description: "\(path) is not a plain path below \(base)")
        }
        return components
    }
}
