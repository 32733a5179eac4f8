public import Foundation
#if canImport(Glibc)
import Glibc
#endif
import CArchive  // a release build finds `stat` through it (MemberImportVisibility), not through Glibc
public import GustCore
import CArchive

/// Builds the next version of a stack: `mmdebstrap --variant=minbase` of a Debian suite with the
/// packages the buildpacks run (`packages`) into `GUST_HOME/stacks/.building-…`, then, inside the
/// new root, asks Python and Node their versions, measures it, makes it read-only, writes
/// `stack.json` and renames the directory to `NAME@VERSION`: a reader sees the whole stack or
/// none. Whatever fails on the way removes the directory. One build at a time per home
/// (`stacks/.lock`); a build interrupted before that left `.building-*`, which the next removes.
public struct StackBuilder: Sendable {
    /// The Debian suites offered (the package names below hold in both).
    public static let suites = ["bookworm", "trixie"]
    /// What the buildpacks run, at build time (bash, coreutils, tar, sed, find of minbase; venv, pip;
    /// node, npm) and at run time (python3, node), and what apps expect of a system (TLS roots, time zones).
    public static let packages = ["python3", "python3-venv", "python3-pip", "nodejs", "npm", "ca-certificates", "tzdata"]
    public static let mmdebstrap = "/usr/bin/mmdebstrap"

    public var home: GustHome
    public var name: String
    public var suite: String
    /// Leaves npm out (it is half the size): Node apps with dependencies cannot build on such a stack.
    public var withoutNPM = false
    /// A Debian mirror other than mmdebstrap's default (deb.debian.org).
    public var mirror: String?
    /// The version to build instead of the next one: only one this home lacks (a restored home's
    /// releases record the stacks they ran on, and a backup leaves the stacks out).
    public var version: Int?
    public var timeout: Duration = .seconds(30 * 60)
    /// How the build is asked to stop before it is done (`gust stacks build` on a signal).
    public var interruption = StackBuildInterruption()

    public init(home: GustHome, name: String, suite: String) throws {
        guard Self.suites.contains(suite) else {
            throw GustError("Gust builds stacks of \(Self.suites.joined(separator: " or ")), not \"\(suite)\".")
        }
        guard Stack.Reference.isValidName(name) else {
            throw GustError("\"\(name)\" is not a stack name: use 1 to 32 lowercase letters, digits and '-', starting with a letter.")
        }
        self.home = home
        self.name = name
        self.suite = suite
    }

    public var packageList: [String] { withoutNPM ? Self.packages.filter { $0 != "npm" } : Self.packages }

    /// Builds it, telling `progress` each line (mmdebstrap's own, then Gust's steps).
    public func build(progress: @escaping @Sendable (String) -> Void) async throws -> Stack {
        if let version, FileManager.default.fileExists(atPath: home.stack(try Stack.Reference(name: name, version: version)).path) {
            throw GustError("\(name)@\(version) is already in this home; a stack version is never rebuilt in place.",
                            hint: "Leave out --version to build the next one (\(name)@\(try nextVersion(in: home.stacks))).")
        }
        guard FileManager.default.isExecutableFile(atPath: Self.mmdebstrap) else {
            throw GustError("\(Self.mmdebstrap) is not installed.", hint: "Install it: apt-get install mmdebstrap (scripts/install-deps.sh does).")
        }
        // As another user mmdebstrap would make the root in a user namespace, owned by subordinate
        // uids that user could then neither make read-only nor remove.
        guard getuid() == 0 else {
            throw GustError(
                "Building a stack needs root: mmdebstrap makes a Debian root as root, and the stack is root's, read by gustd's user.",
                hint: "Run it as root with the home gustd uses: sudo gust stacks build NAME --home GUST_HOME"
            )
        }
        if let reason = Sandbox.unavailableReason() {
            throw GustError("Stacks need bubblewrap, which builds and instances run on them with: \(reason).")
        }
        // Every path below goes through the directory's descriptor, never its name in the home
        // (gustd's user's, who could put a link there), and the lock is in it.
        let stacks = try StacksDirectory(home: home)
        let lock = try FileLock(stacks.url.appendingPathComponent(".lock")) { progress("Waiting for another stack build to finish") }
        defer { withExtendedLifetime((lock, stacks)) {} }
        try Self.removeUnfinished(in: stacks.url, progress: progress)

        let reference = try Stack.Reference(name: name, version: try version ?? nextVersion(in: stacks.url))
        let staging = stacks.url.appendingPathComponent(".building-\(reference.name)-\(reference.version)-\(UUID().uuidString.prefix(8).lowercased())")
        let rootfs = staging.appendingPathComponent("rootfs")
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: false)
        chmod(staging.path, 0o755)  // apt's sandbox user (_apt) downloads into it
        do {
            let started = ContinuousClock.now
            progress("-----> Building \(reference) from Debian \(suite): \(packageList.joined(separator: ", "))")
            try checkInterruption()
            try await bootstrap(into: rootfs, progress: progress)
            try Self.placeholders(in: rootfs)
            let python = try await Self.version(of: ["/usr/bin/python3", "--version"], in: rootfs, prefix: "Python ")
            let node = try await Self.version(of: ["/usr/bin/node", "--version"], in: rootfs, prefix: "v")
            try checkInterruption()
            try Self.makeReadOnly(rootfs)
            let size = DiskUsage.of(rootfs)
            let stack = Stack(reference: reference, suite: suite, createdAt: Date(), python: python, node: node, sizeBytes: size)
            let description = staging.appendingPathComponent("stack.json")
            try StackCatalog.encode(stack).write(to: description)
            chmod(description.path, 0o444)
            chmod(staging.path, 0o755)
            guard rename(staging.path, stacks.stack(reference).path) == 0 else {
                throw GustError("Cannot move the stack into place at \(home.stack(reference).path): \(String(cString: strerror(errno)))")
            }
            let seconds = Int((ContinuousClock.now - started).seconds.rounded())
            progress("-----> Built \(reference) in \(seconds) s: Python \(python ?? "none"), Node \(node ?? "none"), \(ByteCount(size))")
            return stack
        } catch {
            Self.takeDown(staging, progress: progress)
            throw error
        }
    }

    /// Takes a failed or stopped build's directory away. mmdebstrap's run returns once its output
    /// closes, and a process of the build may outlive that: first none may name the directory any
    /// more (at most `patience`), then what is still mounted in it is taken down, deepest first, and
    /// the tree removed. What cannot be is said, with why, and left for the next build's sweep
    /// (`removeUnfinished`): never removed through a mount, or under a process still writing there.
    static func takeDown(
        _ staging: URL, patience: Duration = .seconds(30), progress: (String) -> Void,
        running: (String) -> [Int32] = { processes(naming: $0) }
    ) {
        let deadline = ContinuousClock.now + patience
        var left = running(staging.path)
        while !left.isEmpty, ContinuousClock.now < deadline {
            usleep(100_000)
            left = running(staging.path)
        }
        guard left.isEmpty else { return progress("       Left \(staging.path): \(stillRunning(left))") }
        unmountLeftovers(under: staging)
        do { try removeTree(staging) } catch { progress("       Left \(staging.path): \(error)") }
    }

    /// Lazily unmounts, deepest first, what an mmdebstrap that has exited left mounted in `staging`:
    /// one stopped while it was still setting up its root's mounts can leave some behind.
    static func unmountLeftovers(under staging: URL) {
        // mountinfo names the real paths; each is unmounted through `staging` as given (the stacks
        // directory's descriptor), never through the home's names, and never through a link.
        let real = realPath(staging.path)
        for point in mountPoints(under: staging.path).sorted(by: { $0.count > $1.count }) {
            _ = umount2(staging.path + point.dropFirst(real.count), Int32(MNT_DETACH | UMOUNT_NOFOLLOW))
        }
    }

    private func checkInterruption() throws {
        guard interruption.isInterrupted else { return }
        throw GustError("The build was interrupted: mmdebstrap was stopped, and nothing was kept.")
    }

    /// One more than the highest version of this name built so far in `stacks`.
    func nextVersion(in stacks: URL) throws -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: stacks.path)) ?? []
        let versions = names.compactMap { try? Stack.Reference(parsing: $0) }.filter { $0.name == name }.map(\.version)
        return (versions.max() ?? 0) + 1
    }

    private func bootstrap(into rootfs: URL, progress: @escaping @Sendable (String) -> Void) async throws {
        var arguments = [
            "--variant=minbase", "--include=" + packageList.joined(separator: ","),
            // No manuals, documentation (but the copyright files) or translations: nothing runs them.
            "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/doc/*",
            "--dpkgopt=path-include=/usr/share/doc/*/copyright", "--dpkgopt=path-exclude=/usr/share/locale/*",
            suite, rootfs.path,
        ]
        if let mirror { arguments.append(mirror) }
        arguments.insert(contentsOf: Self.localAuthorityHooks(), at: 0)
        var environment = ProcessInfo.processInfo.environment
        environment["LANG"] = "C.UTF-8"
        let interruption = self.interruption
        var command = StreamingCommand(
            executable: URL(fileURLWithPath: Self.mmdebstrap), arguments: arguments, environment: environment,
            // Started in its build's directory: the next build's sweep finds it there by its working
            // directory (its command line names the directory through this process's descriptor).
            workingDirectory: rootfs.deletingLastPathComponent(), started: { pid in interruption.started(pid) }
        ).outlivingItsReader()
        // On SIGTERM mmdebstrap unmounts proc, sys and dev from the new root: time for that before SIGKILL.
        command.gracePeriod = .seconds(30)
        let outcome: StreamingCommand.Outcome
        do {
            defer { interruption.ended() }  // its process group is no longer one to signal
            outcome = try await command.run(until: .now + timeout) { progress("       " + $0) }
        }
        try checkInterruption()
        switch outcome {
        case .exited(0): return
        case .timedOut: throw GustError("mmdebstrap took longer than \(timeout.minutesText) and was stopped; nothing was kept.")
        default: throw GustError("mmdebstrap failed (\(outcome)); its output is above, and nothing was kept.")
        }
    }

    /// The certificate authorities the admin added to the host (`/usr/local/share/ca-certificates`,
    /// Debian's place for them: a company's, a TLS-inspecting proxy's) are trusted inside too, so that
    /// pip and npm reach their registries from the stack as they do from the host. mmdebstrap hooks:
    /// copied in, then `update-ca-certificates` in the new root. Nothing else of the host's goes in.
    static func localAuthorityHooks(directory: String = "/usr/local/share/ca-certificates") -> [String] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { name in
            name.hasSuffix(".crt") && name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0) }
        }.sorted()
        guard !names.isEmpty else { return [] }
        return [
            "--customize-hook=mkdir -p \"$1\(directory)\"",
            "--customize-hook=copy-in " + names.map { directory + "/" + $0 }.joined(separator: " ") + " " + directory,
            "--customize-hook=chroot \"$1\" update-ca-certificates",
        ]
    }

    /// The host's name resolution is bound over these in a sandbox (`Sandbox.hostNetworkFiles`): the
    /// stack holds empty ones, never the build host's.
    static func placeholders(in rootfs: URL) throws {
        for file in Sandbox.hostNetworkFiles {
            let path = rootfs.appendingPathComponent("etc/" + file).path
            try? FileManager.default.removeItem(atPath: path)
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o644]) else {
                throw GustError("Cannot write \(path).")
            }
        }
    }

    /// `COMMAND --version` run inside the stack (a sandbox on it), without `prefix`; nil when absent.
    static func version(of command: [String], in rootfs: URL, prefix: String) async throws -> String? {
        guard FileManager.default.fileExists(atPath: rootfs.path + command[0]) else { return nil }
        var sandbox = Sandbox(identity: SandboxIdentity(range: nil, uid: getuid(), gid: getgid()), root: rootfs.path)
        // bwrap starts in the root's parent and binds it by its relative name (`rootfs` may be
        // reached through this process's descriptor, which bwrap may not follow).
        sandbox.rootAsBwrapNamesIt = rootfs.lastPathComponent
        let argv = sandbox.command(app: nil, mounts: [], directory: "/", purpose: .instance, executable: command[0], arguments: Array(command.dropFirst()))
        let lines = LineCollector()
        let outcome = try await StreamingCommand(
            executable: URL(fileURLWithPath: argv[0]), arguments: Array(argv.dropFirst()), environment: ["PATH": Sandbox.path, "LANG": "C.UTF-8"],
            workingDirectory: rootfs.deletingLastPathComponent()
        ).run(until: .now + .seconds(60), onLine: lines.append)
        guard outcome == .exited(0), let line = lines.lines.first(where: { $0.hasPrefix(prefix) }) else {
            throw GustError("\(command.joined(separator: " ")) did not run inside the new stack (\(outcome)): \(lines.lines.joined(separator: " / "))")
        }
        return String(line.dropFirst(prefix.count)).trimmingCharacters(in: .whitespaces)
    }

    /// Takes every write permission away: files keep their other bits, directories become 0555 (or
    /// their own bits without write), deepest first.
    static func makeReadOnly(_ root: URL) throws {
        var directories = [root.path]
        if let walker = FileManager.default.enumerator(atPath: root.path) {
            for case let relative as String in walker {
                let path = root.path + "/" + relative
                var info = stat()
                guard lstat(path, &info) == 0 else { continue }
                switch info.st_mode & S_IFMT {
                case S_IFDIR: directories.append(path)
                case S_IFREG:
                    guard chmod(path, info.st_mode & 0o7555) == 0 else { throw GustError("Cannot make \(path) read-only: \(String(cString: strerror(errno)))") }
                default: continue  // links have no mode of their own; devices and fifos are not written through here
                }
            }
        }
        for path in directories.reversed() {
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            guard chmod(path, info.st_mode & 0o7555) == 0 else { throw GustError("Cannot make \(path) read-only: \(String(cString: strerror(errno)))") }
        }
    }

    /// Removes a stack's directory (or an unfinished one), giving its directories write back first.
    /// Never a tree with a file system mounted inside it: an `mmdebstrap` that outlived the `gust`
    /// that started it (killed outright, SIGKILL) still has `proc`, `sys` and `dev` mounted in its
    /// root, and removing through them would reach the host's.
    public static func removeTree(_ url: URL) throws {
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        let mounted = mountPoints(under: url.path)
        guard mounted.isEmpty else {
            throw GustError(
                "Cannot remove \(url.path): \(mounted.count) file system(s) are mounted inside it (\(mounted.prefix(3).joined(separator: ", "))\(mounted.count > 3 ? ", …" : "")).",
                hint: "A stack build may still be running there. Stop its mmdebstrap, or unmount them (umount -l), and try again."
            )
        }
        _ = chmod(url.path, 0o755)
        if let walker = FileManager.default.enumerator(atPath: url.path) {
            for case let relative as String in walker {
                let path = url.path + "/" + relative
                var info = stat()
                // chmod follows links: never touch what a link points at.
                if lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR { _ = chmod(path, (info.st_mode & 0o7777) | 0o700) }
            }
        }
        try FileManager.default.removeItem(at: url)
    }

    /// `.building-*` left by a build that was killed (the caller holds the stacks lock: no build of
    /// ours runs). One where a process of that build still runs (its mmdebstrap, or a dpkg, outlived
    /// the `gust` that started it) is left, and said so. Otherwise what is still mounted inside is
    /// taken down first: an mmdebstrap stopped while it set up its root's mounts exits without
    /// undoing them, and a killed `gust` cannot (`unmountLeftovers`).
    static func removeUnfinished(
        in stacks: URL, progress: (String) -> Void = { _ in },
        running: (String) -> [Int32] = { processes(naming: $0) }
    ) throws {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: stacks.path)) ?? []
        for name in names where name.hasPrefix(".building-") {
            let directory = stacks.appendingPathComponent(name)
            let left = running(directory.path)
            guard left.isEmpty else {
                progress("       Left \(directory.path): \(stillRunning(left))")
                continue
            }
            unmountLeftovers(under: directory)
            try removeTree(directory)
        }
    }

    /// What a directory is left for: the processes of a build still running there (the first few).
    private static func stillRunning(_ pids: [Int32]) -> String {
        "processes of a build still run there (\(pids.prefix(5).map(String.init).joined(separator: ", "))\(pids.count > 5 ? ", …" : "")); the next build removes it."
    }

    /// The processes (other than this one) of a build in `path`: those with it in their command
    /// line (mmdebstrap, its worker, apt), and those whose root or working directory is at or under
    /// it (the dpkg and maintainer scripts apt runs chrooted into the new root name it nowhere).
    static func processes(naming path: String) -> [Int32] {
        let wanted = Array(path.utf8)
        let root = realPath(path)
        func isInside(_ link: String) -> Bool {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: link) else { return false }
            return target == root || target.hasPrefix(root + "/")
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap { name -> Int32? in
            guard let pid = Int32(name), pid != getpid() else { return nil }
            if let command = FileManager.default.contents(atPath: "/proc/\(name)/cmdline"), command.firstRange(of: wanted) != nil { return pid }
            return isInside("/proc/\(name)/root") || isInside("/proc/\(name)/cwd") ? pid : nil
        }
    }

    /// The mount points at or under `path`, from `mountinfo` (the kernel's `/proc/self/mountinfo`:
    /// the fifth field, with space, tab, newline and backslash written as octal escapes).
    static func mountPoints(under path: String, mountinfo: String? = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) -> [String] {
        let root = realPath(path)
        return (mountinfo ?? "").split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count > 4 else { return nil }
            let point = unescapeMountField(fields[4])
            return point == root || point.hasPrefix(root + "/") ? point : nil
        }
    }

    /// `path` as the kernel names it in mountinfo and in `/proc/PID/root`: links resolved (a home
    /// at `/srv/gust` may be a link to `/data/gust`), no trailing slash. As given when it is not there.
    static func realPath(_ path: String) -> String {
        if let resolved = realpath(path, nil) {
            defer { free(resolved) }
            return String(cString: resolved)
        }
        return path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    private static func unescapeMountField(_ field: Substring) -> String {
        var bytes: [UInt8] = []
        var rest = Array(field.utf8)[...]
        while let byte = rest.popFirst() {
            if byte == UInt8(ascii: "\\"), rest.count >= 3, let value = UInt8(String(decoding: rest.prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                rest = rest.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
