#if canImport(Glibc)
import Glibc
#endif
public import Foundation

/// A bubblewrap sandbox for pushed code: an instance of a release or the
/// steps of a build (detect, compile, release), both started by gustd, through
/// the same command line.
///
/// New user, mount, PID, IPC and UTS namespaces; `/usr` and the few files of
/// `/etc` that name resolution, TLS and time zones need, read-only; a private
/// size-limited `/tmp`; `/proc` of the sandbox only; and the mounts the caller
/// names (a release at `/app` read-only, an instance's socket directory at
/// `/run/gust`; or a build's directories). Nothing else of the host, and so
/// nothing of `GUST_HOME`, exists inside. Nested user namespaces are refused
/// (`max_user_namespaces` is 0 inside), the app's code has no capability and
/// `no_new_privs`, and the sandbox dies with the process that started it.
///
/// With a subordinate range (`SandboxIdentity`), bubblewrap waits on its
/// standard input until `newuidmap` has given the namespace its map; then a
/// short shell, still inside uid 0 of the namespace, sets the limit and drops
/// to the app's uid with `setpriv`. An instance's start (`directCommand`) has
/// no shell: gustd spawns bwrap itself, sets the limit from outside and
/// `setpriv` runs the app's code. The network namespace is the host's: the
/// installer's nftables rules refuse the apps' uids every local address and
/// the link-local range (docs/security.md).
public struct Sandbox: Sendable {
    public struct Mount: Sendable {
        public var source: String
        public var target: String
        public var writable: Bool
        public init(_ source: String, at target: String, writable: Bool = false) {
            self.source = source
            self.target = target
            self.writable = writable
        }
    }

    /// What runs inside: it decides the umask (an instance's socket must be
    /// connectable by gustd, which is another uid; a build's files readable by it).
    public enum Purpose: Sendable {
        case instance
        /// A build step: the paths given (none for detect and release, which only read) are handed
        /// to the app's uid first (they are gustd's).
        case build(owning: [String])
        /// `bin/compile` (the command), then in the same sandbox `bin/release` (`release`, a path
        /// inside, given `/app`): see `compileThenReleaseScript`. `output` is a host file the command
        /// line opens; inside it is only `releaseOutputDescriptor` of the sandbox's first shell,
        /// never held by compile's processes. `owning` as for `build`.
        case compileThenRelease(owning: [String], release: String, output: String)
        /// Gives every file under the paths back to gustd's uid after a build (inside uid 0, with
        /// the capabilities to do it over the app's files, and nothing of the app's runs).
        case reclaim
    }

    public static let bwrap = "/usr/bin/bwrap"
    public static let setpriv = "/usr/bin/setpriv"
    /// Where an instance's release is, inside.
    public static let appDirectory = "/app"
    /// Where an instance's socket directory is, inside.
    public static let socketDirectory = "/run/gust"
    /// The PATH of sandboxed code: the system's interpreters, never a user's shims.
    public static let path = "/usr/local/bin:/usr/bin:/bin"

    public var identity: SandboxIdentity
    /// The size of the private `/tmp`.
    public var tmpBytes: Int
    /// The seccomp filter's file (`withSeccompFilter(in:)`); none when nil.
    public private(set) var seccompFile: String?
    /// The system the sandbox runs on: a stack's root filesystem (`Stack.rootfs(in:)`), whose `/usr`,
    /// `/bin`… links and `/etc` are bound instead of the host's; nil: the host's own system.
    public var root: String?
    /// How bwrap itself names `root`, when not as this process does. A stack being built is reached
    /// here through a descriptor (`StacksDirectory`, `/proc/PID/fd/N`), which bwrap, in a user
    /// namespace of its own, may not follow: it gets the root relative to its working directory,
    /// which is the same directory (opened through the descriptor, not by the home's names).
    public var rootAsBwrapNamesIt: String?
    /// The host's `/etc` entries of `etc`, copied into one directory (`withHostEtc(in:)`) that is
    /// bound as `/etc` with one mount; nil: each entry bound on its own.
    public private(set) var etcDirectory: String?

    public init(identity: SandboxIdentity, tmpBytes: Int = 64 << 20, root: String? = nil) {
        self.identity = identity
        self.tmpBytes = tmpBytes
        self.root = root
    }

    /// The same sandbox on `root` (a stack's root filesystem; nil: the host's system).
    public func on(root: String?) -> Sandbox {
        var sandbox = self
        sandbox.root = root
        return sandbox
    }

    /// The same sandbox with its seccomp filter, written into `directory` (gustd's and the
    /// hook's `GUST_HOME/run`) if it is not there yet. Unchanged where there is no filter for
    /// this architecture.
    public func withSeccompFilter(in directory: URL) throws -> Sandbox {
        var sandbox = self
        sandbox.seccompFile = try SandboxSeccomp.install(in: directory)
        return sandbox
    }

    /// The same sandbox with its `/etc` made afresh in `directory` (gustd's `GUST_HOME/run`, once
    /// as it starts: `SandboxEtc`), bound with one mount instead of one per entry.
    public func withHostEtc(in directory: URL) throws -> Sandbox {
        var sandbox = self
        sandbox.etcDirectory = try SandboxEtc.prepare(in: directory, entries: Self.etc)
        return sandbox
    }

    /// Whether bubblewrap is installed and can make namespaces here; the reason if not.
    public static func unavailableReason() -> String? {
        guard FileManager.default.isExecutableFile(atPath: bwrap) else { return "\(bwrap) is not installed (Debian: bubblewrap)" }
        guard FileManager.default.isExecutableFile(atPath: setpriv) else { return "\(setpriv) is not installed (Debian: util-linux)" }
        let trial = Sandbox(identity: SandboxIdentity(range: nil, uid: getuid(), gid: getgid()))
        let words = trial.command(app: nil, mounts: [], directory: "/", purpose: .instance, executable: "/usr/bin/true", arguments: [])
        let spawned = SandboxSpawn.spawn(words) { actions in
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        guard case .success(let child) = spawned else { return "\(bwrap) cannot be started" }
        let status = SandboxSpawn.wait(child)
        return status == 0 ? nil : "\(bwrap) cannot create namespaces here (are unprivileged user namespaces allowed?)"
    }

    /// The descriptor `bin/release`'s output goes to in a `compileThenRelease` sandbox (the shell's
    /// 3 and 4 are bwrap's).
    public static let releaseOutputDescriptor: Int32 = 5

    /// The whole command line (a shell, then bwrap) that runs `executable` in `directory` inside: a
    /// build step's, `reclaim`'s and the trial's at start (an instance starts with `directCommand`).
    /// - Parameters:
    ///   - app: the app's host ids; nil runs it as gustd's uid in a namespace of its own.
    ///     With ids, bwrap blocks on its standard input until `release(_:app:unblocking:)`.
    public func command(
        app ids: (uid: UInt32, gid: UInt32)?, mounts: [Mount], directory: String, purpose: Purpose,
        executable: String, arguments: [String]
    ) -> [String] {
        // bwrap runs under a shell that waits for it: `--die-with-parent` ties the sandbox to the
        // *thread* that started bwrap (PR_SET_PDEATHSIG), and the threads gustd's tasks run on may
        // end when idle; the shell lives exactly as long as bwrap. It also opens the descriptors
        // bwrap reads (a spawner may close every one from 3): the seccomp filter, and the info
        // descriptor bwrap wants with its block one. `; exit` keeps dash from exec'ing bwrap.
        var opens: [String] = []
        if let seccompFile { opens.append("4<\(Self.quoted(seccompFile))") }
        if case .compileThenRelease(_, _, let output) = purpose {
            opens.append("\(Self.releaseOutputDescriptor)>\(Self.quoted(output))")
        }
        if ids != nil { opens.append("3>/dev/null") }
        let shell = ["/bin/sh", "-c", (["\"$0\" \"$@\""] + opens).joined(separator: " ") + "; exit $?"]
        return shell + bwrap(
            app: ids, mounts: mounts, directory: directory, purpose: purpose, executable: executable, arguments: arguments,
            seccompDescriptor: seccompFile == nil ? nil : 4, infoDescriptor: ids == nil ? nil : 3, innerShell: true
        )
    }

    /// bwrap itself, with no shell, for a spawner that places the descriptors bwrap reads and ties
    /// it to gustd's life itself (`gust_spawn` on gustd's spawn thread, with PR_SET_PDEATHSIG): the
    /// `passing` ones at 3, 4, … (the same numbers inside: `directDescriptors(passing:)`), then the
    /// seccomp filter's file when there is one, then, with ids, one bwrap writes its info to
    /// (/dev/null). An instance only. With ids, `setpriv` starts the app's code as its uid with
    /// nothing in between, so the spawner does what the inner shell does in `command`: the umask
    /// (000: gustd, another uid, connects to the socket the instance makes) in the spawned
    /// process, and refusing nested user namespaces (`max_user_namespaces` 0 in the sandbox's,
    /// written from outside through `release`'s `prepare`) before it lets the sandbox go on.
    public func directCommand(
        app ids: (uid: UInt32, gid: UInt32)?, mounts: [Mount], directory: String, executable: String, arguments: [String],
        passing: Int = 0
    ) -> [String] {
        let seccomp = seccompFile == nil ? nil : 3 + passing
        let info = ids == nil ? nil : 3 + passing + (seccomp == nil ? 0 : 1)
        return bwrap(
            app: ids, mounts: mounts, directory: directory, purpose: .instance, executable: executable, arguments: arguments,
            seccompDescriptor: seccomp, infoDescriptor: info, innerShell: false
        )
    }

    /// bwrap making an app's *holder*: a sandbox with this one's namespaces and system mounts, `/app`,
    /// `/run/gust` and `/tmp` as empty mount points, its root read-only, running `sleep infinity`,
    /// that each start of the app enters (`gust_spawn_entering`) instead of bwrap building one
    /// (docs/security.md, "Prepared sandboxes"). Spawned like `directCommand` (no shell): with ids,
    /// bwrap blocks on its standard input for the map and writes its info to `3 + passing`; the
    /// holder itself runs as gustd's uid inside (the app's code is mapped to the app's uid), without,
    /// as `SandboxIdentity.appUIDInside` in a nested user namespace, like an instance.
    public func holderCommand(app ids: (uid: UInt32, gid: UInt32)?) -> [String] {
        var argv = [Self.bwrap, "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        argv += ["--die-with-parent", "--new-session", "--hostname", "gust"]
        if ids != nil {
            argv += ["--userns-block-fd", "0", "--info-fd", "3"]
        } else {
            let inside = String(SandboxIdentity.appUIDInside)
            argv += ["--uid", inside, "--gid", inside, "--disable-userns"]
        }
        argv += systemMounts()
        argv += ["--proc", "/proc", "--dev", "/dev"] + Self.boundedDev(tmpBytes: tmpBytes)
        argv += ["--perms", "0755", "--dir", Self.appDirectory, "--perms", "0755", "--dir", Self.socketDirectory]
        argv += ["--perms", "1777", "--dir", "/tmp", "--remount-ro", "/"]
        return argv + ["--", "/usr/bin/sleep", "infinity"]
    }

    /// What of `/proc` is made read-only where the app's uid is gustd's own (as `entry.c` does for
    /// an entered start): files a root-owned process could write, sysctls among them.
    static let procCovers = ["/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs", "/proc/scsi", "/proc/acpi"]

    /// After bubblewrap's `--dev`: that `/dev` is a tmpfs of the sandbox's own, writable by its
    /// owner, who without a subordinate uid range is the app's uid; there an app could write
    /// without bound, in memory no limit of its own counts, for as long as its holder lives. So it is
    /// read-only, and `/dev/shm` (POSIX semaphores and shared memory: Python's multiprocessing,
    /// compileall -j) a tmpfs bounded as `/tmp` is. `/dev/pts` stays a mount of its own.
    static func boundedDev(tmpBytes: Int) -> [String] {
        ["--remount-ro", "/dev", "--size", String(tmpBytes), "--perms", "1777", "--tmpfs", "/dev/shm"]
    }

    /// The seccomp program (`SandboxSeccomp`) as bytes, for a start that loads it itself
    /// (`gust_spawn_entering`); nil where there is none for this architecture.
    public static var seccompProgram: [UInt8]? { SandboxSeccomp.program }

    /// The descriptor the `index`th one passed on to `directCommand` is, inside: its own number.
    public static func directDescriptor(_ index: Int) -> Int32 { Int32(3 + index) }

    private func bwrap(
        app ids: (uid: UInt32, gid: UInt32)?, mounts: [Mount], directory: String, purpose: Purpose,
        executable: String, arguments: [String], seccompDescriptor: Int?, infoDescriptor: Int?, innerShell: Bool
    ) -> [String] {
        var argv = [Self.bwrap, "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        argv += ["--die-with-parent", "--new-session", "--hostname", "gust"]
        if let seccompDescriptor { argv += ["--seccomp", String(seccompDescriptor)] }
        if let infoDescriptor { argv += ["--userns-block-fd", "0", "--info-fd", String(infoDescriptor)] }
        if ids != nil {
            var capabilities = ["CAP_SETUID", "CAP_SETGID"]
            // The inner shell refuses nested user namespaces itself; without it gustd does, from outside.
            if innerShell { capabilities.append("CAP_SYS_RESOURCE") }
            switch purpose {
            case .instance: break
            case .build, .compileThenRelease, .reclaim: capabilities += ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER"]
            }
            for capability in capabilities { argv += ["--cap-add", capability] }
        } else {
            let inside = String(SandboxIdentity.appUIDInside)
            argv += ["--uid", inside, "--gid", inside, "--disable-userns"]
        }
        argv += systemMounts()
        argv += ["--proc", "/proc", "--dev", "/dev"] + Self.boundedDev(tmpBytes: tmpBytes)
        argv += ["--size", String(tmpBytes), "--perms", "1777", "--tmpfs", "/tmp"]
        // A directory bwrap makes above a mount point (`/buildpacks` of `/buildpacks/0`) takes the
        // caller's umask (gustd's is 077): the app's uid must search it.
        var parents: Set<String> = ["/", "/run"]
        for mount in mounts {
            let parent = (mount.target as NSString).deletingLastPathComponent
            if parents.insert(parent).inserted { argv += ["--perms", "0755", "--dir", parent] }
        }
        for mount in mounts {
            argv += [mount.writable ? "--bind" : "--ro-bind", mount.source, mount.target]
        }
        argv += ["--chdir", directory]
        guard ids != nil else {
            // Without an app uid of its own the app is gustd's uid outside, root's where gustd runs as
            // root. Sysctls are written by whoever is root outside, capabilities or not, and bwrap
            // leaves `/proc/sys` writable where its own check cannot write it: a build could set the
            // host's `core_pattern`, and run what it liked as root. And `/` is a tmpfs bwrap made,
            // the app's own, with no size: past the `/tmp` bound.
            argv += Self.procCovers.filter { FileManager.default.fileExists(atPath: $0) }.flatMap { ["--ro-bind", $0, $0] }
            argv += ["--remount-ro", "/"]
            guard case .compileThenRelease(_, let release, _) = purpose else { return argv + ["--", executable] + arguments }
            let script = Self.compileThenReleaseScript(release: release, asApp: nil)
            return argv + ["--", "/bin/sh", "-c", script, "gust-sandbox", executable] + arguments
        }
        // Inside uid 0 (gustd's own) until setpriv: refuse nested user namespaces, then become the app.
        let inside = String(SandboxIdentity.appUIDInside)
        let setpriv = [Self.setpriv, "--reuid=\(inside)", "--regid=\(inside)", "--clear-groups", "--inh-caps=-all", "--"]
        guard innerShell else { return argv + ["--"] + setpriv + [executable] + arguments }
        let asApp = setpriv.joined(separator: " ")
        let prepare: String
        var run = "exec \(asApp) \"$@\" </dev/null"
        switch purpose {
        case .instance: prepare = "umask 000"
        case .build(let owning), .compileThenRelease(let owning, _, _):
            prepare = (owning.isEmpty ? "" : "chown -R \(inside):\(inside) \(owning.map(Self.quoted).joined(separator: " ")) || exit 125\n") + "umask 022"
            if case .compileThenRelease(_, let release, _) = purpose {
                run = Self.compileThenReleaseScript(release: release, asApp: asApp)
            }
        case .reclaim: return argv + ["--", "/bin/chown", "-R", "0:0"] + arguments
        }
        let script = """
            echo 0 > /proc/sys/user/max_user_namespaces || exit 125
            \(prepare)
            \(run)
            """
        return argv + ["--", "/bin/sh", "-c", script, "gust-sandbox", executable] + arguments
    }

    /// What the sandbox's first shell runs for `compileThenRelease`: the command (`bin/compile`) as
    /// the app, without the release descriptor; if it failed, its status is the sandbox's. Else every
    /// process it left is killed (as the app's uid, which cannot signal this shell, or by this shell
    /// itself where it is the app's uid) and reaped, so nothing of the pushed code runs beside `bin/release`,
    /// which then runs as the app with its stdout and stderr into the release descriptor (at most
    /// 1 MB, `ulimit -f`; 30 s), and this shell adds its status as the last line there,
    /// `gust-release-exit N`. The sandbox's status is 0 once compile succeeded, whatever release did.
    /// - Parameter asApp: the `setpriv … --` prefix that becomes the app's uid; nil: the shell is it.
    static func compileThenReleaseScript(release: String, asApp: String?) -> String {
        let app = asApp.map { $0 + " " } ?? ""
        let output = releaseOutputDescriptor
        // A SIGKILL is taken when its process next runs, which on a loaded machine can be after
        // release started; and a killed process is still there until the sandbox's init reaps it.
        // So again until /proc lists none but init, the killer and its parent (the sandbox's
        // shell), for at most 5 s; a process still there then (stuck in the kernel, or one that
        // killed the killer) means no release at all. (kill(-1)'s own status cannot tell: it
        // succeeds where it only met processes it may not signal, such as the sandbox's shell.)
        let untilNoneLeft = { (giveUp: String) in
            "tries=0; while :; do kill -9 -1 2>/dev/null; left=; for p in /proc/[0-9]*; do case ${p#/proc/} in 1|$$|$PPID) ;; *) left=1;; esac; done; "
                + "[ -n \"$left\" ] || break; [ \"$tries\" -lt 500 ] || \(giveUp); tries=$((tries + 1)); sleep 0.01; done"
        }
        let stuck = "{ echo 'Processes bin/compile left did not end within 5 s of SIGKILL: bin/release was not run.' >&\(output); exit 0; }"
        let killLeft = asApp.map { "\($0) /bin/sh -c '\(untilNoneLeft("exit 1"))' </dev/null \(output)>&- || \(stuck)" } ?? untilNoneLeft(stuck)
        return """
            \(app)"$@" </dev/null \(output)>&-
            status=$?
            [ "$status" -eq 0 ] || exit "$status"
            \(killLeft)
            (ulimit -f 2048; exec \(app)/usr/bin/timeout -s KILL 30 \(quoted(release)) \(appDirectory) </dev/null >&\(output) 2>&1 \(output)>&-)
            echo "gust-release-exit $?" >&\(output)
            exit 0
            """
    }

    /// Gives others read (and search, and execute where the owner has it) on every file and
    /// directory under `root`, and takes away group and other write: a release unpacked by gustd
    /// (umask 077) becomes readable by its app's uid. `releases/` stays 0700, so only the app's
    /// own sandbox, which mounts it read-only, reaches it.
    public static func openToOthers(_ root: String) throws {
        try addOthersRead(root)
        if let walker = FileManager.default.enumerator(atPath: root) {
            while let relative = walker.nextObject() as? String { try addOthersRead(root + "/" + relative) }
        }
    }

    private static func addOthersRead(_ path: String) throws {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),  // lstat: links are not followed
            let type = attributes[.type] as? FileAttributeType, type == .typeRegular || type == .typeDirectory,
            let old = (attributes[.posixPermissions] as? NSNumber)?.intValue
        else { return }
        var mode = old | 0o004
        if type == .typeDirectory || old & 0o100 != 0 { mode |= 0o001 }
        mode &= ~0o022
        if mode != old, chmod(path, mode_t(mode)) != 0 {
            throw SandboxError("Cannot open \(path) to its app's sandbox: \(String(cString: strerror(errno)))")
        }
    }

    static func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// After a build as the app's uid: every file under `paths` (their sources, mounted at the
    /// same places inside) back to gustd's uid, so that it can pack, cache and delete them.
    public func reclaim(_ paths: [String], app ids: (uid: UInt32, gid: UInt32)) throws {
        let argv = command(
            app: ids, mounts: paths.map { Mount($0, at: $0, writable: true) }, directory: "/", purpose: .reclaim,
            executable: "", arguments: paths
        )
        // Close-on-exec: a child another thread spawns meanwhile must not hold the sandbox's block open.
        guard let block = SandboxSpawn.pipe() else { throw SandboxError("Cannot create a pipe: \(String(cString: strerror(errno)))") }
        let spawned = SandboxSpawn.spawn(argv) { actions in  // argv[0] is the shell that becomes bwrap
            posix_spawn_file_actions_adddup2(&actions, block[0], 0)
        }
        close(block[0])
        let child: pid_t
        switch spawned {
        case .success(let pid): child = pid
        case .failure(let failure):
            close(block[1])
            throw SandboxError("Cannot start \(argv[0]): \(failure.words)")
        }
        var status: Int32 = 0
        do { _ = try release(child, app: ids, unblocking: block[1]) } catch {
            kill(child, SIGKILL)
            while waitpid(child, &status, 0) < 0 && errno == EINTR {}
            throw error
        }
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else { throw SandboxError("Could not take back the build's files from the app's uid (status \(status)).") }
    }

    /// `/usr`, the `/bin`, `/lib`… links and `/etc`: the host's few files, or a stack's whole system.
    func systemMounts() -> [String] {
        let system = root ?? ""
        let bound = rootAsBwrapNamesIt ?? system  // what bwrap binds; `system` is what is looked at here
        var argv = ["--ro-bind", bound + "/usr", "/usr"]
        for link in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
            let path = "/" + link
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: system + path) {
                argv += ["--symlink", target, path]
            } else if FileManager.default.fileExists(atPath: system + path) {
                argv += ["--ro-bind", bound + path, path]
            }
        }
        guard let root else {
            // Directories bwrap makes for mount points take the caller's umask (gustd's is 077): the
            // app's uid must search these.
            if let etcDirectory { return argv + ["--ro-bind", etcDirectory, "/etc", "--perms", "0755", "--dir", "/run"] }
            argv += ["--perms", "0755", "--dir", "/etc", "--perms", "0755", "--dir", "/run"]
            for file in Self.etc { argv += ["--ro-bind-try", "/etc/" + file, "/etc/" + file] }
            return argv
        }
        // A stack's /etc whole (its TLS roots, time zone, alternatives, linker cache), and of the
        // host's only what names hosts: the network namespace is the host's, so is its resolver.
        argv += ["--ro-bind", bound + "/etc", "/etc", "--perms", "0755", "--dir", "/run"]
        for file in Self.hostNetworkFiles where FileManager.default.fileExists(atPath: root + "/etc/" + file) {
            argv += ["--ro-bind-try", "/etc/" + file, "/etc/" + file]
        }
        return argv
    }

    /// What of the host's `/etc` a sandbox on a stack sees (over the stack's own, which has them
    /// as empty placeholders for the mount points).
    public static let hostNetworkFiles = ["resolv.conf", "hosts"]

    /// What of `/etc` sandboxed code reads: names, TLS roots, time zones, the dynamic linker's cache.
    static let etc = [
        "resolv.conf", "hosts", "nsswitch.conf", "host.conf", "gai.conf", "services", "protocols", "ssl", "ca-certificates",
        "ca-certificates.conf", "localtime", "timezone", "alternatives", "mime.types", "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
        "passwd", "group",
    ]

    /// Once the command line (`spawned`, its pid) has started: finds the sandbox's first process, gives its
    /// user namespace the app's map when there are ids, then lets it go on by writing
    /// to `unblocking` (bwrap's standard input), which it closes.
    /// - Returns: the sandbox's first process, which leads the process group of the app's processes.
    /// - Parameters:
    ///   - wrapped: whether `spawned` is `command`'s shell (else bwrap itself, `directCommand`).
    ///   - prepare: run on the sandbox's first process after its map, before it goes on.
    ///   - output: where bwrap's stderr goes (what an error says of it).
    public func release(
        _ spawned: Int32, app ids: (uid: UInt32, gid: UInt32)?, unblocking: Int32?, wrapped: Bool = true,
        prepare: ((Int32) throws -> Void)? = nil, output: Output = .shown
    ) throws -> Int32 {
        defer { if let unblocking { close(unblocking) } }
        let bwrap = wrapped ? try Self.firstChild(of: spawned, output: output) : spawned
        let child = try Self.firstChild(of: bwrap, output: output)
        if let ids {
            try identity.map(pid: child, app: ids)
            try prepare?(child)
            var byte: UInt8 = 1
            guard let unblocking, write(unblocking, &byte, 1) == 1 else { throw SandboxError("Cannot let the sandbox of \(bwrap) go on.") }
        }
        return child
    }

    /// The child bwrap clones into the new namespaces; bounded wait (about 2 s). An error says
    /// where bwrap's words are (`output`, its stderr's).
    public static func firstChild(of pid: pid_t, output: Output = .shown) throws -> pid_t {
        let path = "/proc/\(pid)/task/\(pid)/children"
        for attempt in 0..<4_100 {
            let text = try? String(contentsOfFile: path, encoding: .utf8)
            if let first = text?.split(separator: " ").first, let child = pid_t(first) { return child }
            let stat = statFields(of: pid)
            if text == nil || stat == nil || stat?.first == "Z" {
                // A zombie's wait status is its 52nd field (`exit_code`), read without reaping it (its
                // waiter does). Killed (gustd's stop, the OOM killer), bwrap wrote nothing to point at.
                switch stat.flatMap({ $0.count > 49 && $0[0] == "Z" ? Int32($0[49]) : nil }) {
                case let status? where status & 0x7f != 0:
                    throw output.error("bubblewrap was killed by signal \(status & 0x7f) before its sandbox started", pointsAbove: false)
                case let status?:
                    throw output.error("bubblewrap exited with code \((status >> 8) & 0xff) before its sandbox started")
                case nil:
                    throw output.error("bubblewrap exited before its sandbox started")
                }
            }
            usleep(attempt < 100 ? 50 : 500)
        }
        throw output.error("bubblewrap did not start its sandbox within 2 s", pointsAbove: false)
    }

    /// The fields of `/proc/PID/stat` after the command name (which may hold spaces): the state
    /// (field 3) first; nil once the process is gone.
    private static func statFields(of pid: pid_t) -> [Substring]? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: close)...].split(whereSeparator: { $0 == " " || $0 == "\n" })
    }
}
