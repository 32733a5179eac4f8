#if canImport(Glibc)
import Glibc
#endif
import CGustSystem
import Foundation
import GustBuild
import GustCore
import Synchronization

/// Starts an instance in a bubblewrap sandbox (`GustBuild.Sandbox`) as its
/// app's own host uid: the release read-only at `/app`, the instance's socket
/// directory `run/instances/ID/` at `/run/gust` — the only path it shares with
/// gustd — holding the instance's socket and its records channel
/// (`records.sock`, a hard link to gustd's records listener, which takes only
/// the instance's own token). gustd binds the socket and hands it over, so the
/// directory is read-only inside: app code cannot fill gustd's disk through it.
/// A release recorded before that (`InstanceLayout.bindsOwnSocket`) still gets it writable. The database, `ssh/`, other apps' releases and
/// records, gustd's admin socket and the shared records path do not exist inside.
///
/// With `holders`, a start enters the app's prepared sandbox (`SandboxHolders`) with fresh PID,
/// IPC and UTS namespaces, and bwrap builds one only when that cannot be done.
final class SandboxSpawner: InstanceSpawner {
    let sandbox: Sandbox
    let records: InstanceRecords
    let home: GustHome
    /// The app's name and number, which key its holder.
    let app: String
    let number: Int
    /// The prepared sandboxes starts enter; nil: bwrap builds each.
    let holders: SandboxHolders?
    /// The app's host uid and gid; nil when gustd has no subordinate range.
    let ids: (uid: UInt32, gid: UInt32)?
    /// Whether the release has been made readable by the app's uid.
    private let opened = Mutex(false)

    init(
        sandbox: Sandbox, records: InstanceRecords, home: GustHome, app number: Int, named app: String = "", holders: SandboxHolders? = nil
    ) throws {
        self.sandbox = sandbox
        self.records = records
        self.home = home
        self.holders = holders
        self.app = app
        self.number = number
        ids = try sandbox.identity.hostIDs(ofApp: number)
    }

    func layout(id: String, release: URL, bindsOwnSocket: Bool) throws -> InstanceLayout {
        try makeSocketDirectory(records.socketDirectory(id: id), for: id, writable: bindsOwnSocket)
        if ids != nil { try openForApp(release) }
        return InstanceLayout(
            hostSocket: records.socketDirectory(id: id) + "/instance.sock", socket: Sandbox.socketDirectory + "/instance.sock",
            recordsSocket: Sandbox.socketDirectory + "/records.sock", releaseDirectory: Sandbox.appDirectory, path: Sandbox.path,
            bindsOwnSocket: bindsOwnSocket
        )
    }

    /// A fork shares its zygote's sandbox, so its socket directory is one inside the zygote's
    /// (`run/instances/ZYGOTE/ID/`, `/run/gust/ID/` inside): its own socket and its own link to
    /// the records listener, seen by the other forks of the release (the same app) and gustd.
    func forkLayout(id: String, zygote: String, release: URL, bindsOwnSocket: Bool) throws -> InstanceLayout {
        let directory = records.socketDirectory(id: zygote) + "/" + id
        try makeSocketDirectory(directory, for: id, writable: bindsOwnSocket)
        let inside = Sandbox.socketDirectory + "/" + id
        return InstanceLayout(
            hostSocket: directory + "/instance.sock", socket: inside + "/instance.sock",
            recordsSocket: inside + "/records.sock", releaseDirectory: Sandbox.appDirectory, path: Sandbox.path,
            bindsOwnSocket: bindsOwnSocket
        )
    }

    /// The directory of one instance's (or zygote's) socket and records channel.
    /// A fork's is made inside its zygote's, which the app's code writes in when its release binds
    /// its own sockets: made, opened and set up without following anything it may have put there
    /// (`NoFollowPath`). `writable`: the app's uid may make files in it (it binds its own socket);
    /// else only reach the records channel through it.
    private func makeSocketDirectory(_ directory: String, for id: String, writable: Bool) throws {
        // gustd's records listener binds as its services start, perhaps just after the first instances.
        for _ in 0..<200 where access(home.recordsSocket.path, F_OK) != 0 { usleep(10_000) }
        do {
            // Under run/ (0700, gustd's), so reachable only by gustd and, through its mount, this
            // instance, whose uid must create its socket there.
            try NoFollowPath.makeDirectory(
                directory, below: records.directory.path, mode: ids == nil ? 0o700 : writable ? 0o777 : 0o711,
                linking: home.recordsSocket.path, as: "records.sock")
        } catch {
            throw GustError("Cannot give instance \(id) its socket directory and records channel: \(error)")
        }
    }

    /// Has the app's holder made in the background (`SandboxHolders.prepare`), so that its first
    /// start enters it instead of making it: gustd serves the app.
    func prepareHolder() {
        holders?.prepare(app: app, number: number, sandbox: sandbox, ids: ids)
    }

    var isSandboxed: Bool { true }
    var appUIDInside: UInt32? { ids == nil ? nil : SandboxIdentity.appUIDInside }
    var appUIDOnHost: UInt32? { ids?.uid }
    func passedDescriptor(_ index: Int) -> Int32 { Sandbox.directDescriptor(index) }

    func spawn(
        executable: String, arguments: [String], layout: InstanceLayout, release: URL, environment: [String: String], marker: StragglerMarker,
        confinement: SpawnConfinement, passing: [Int32],
        onOutput: @escaping @Sendable ([String], InstanceProcess.StandardStream) -> Void,
        onExit: @escaping @Sendable (Int32) -> Void
    ) throws -> InstanceProcess {
        let socketDirectory = URL(fileURLWithPath: layout.hostSocket).deletingLastPathComponent().path
        // The app's `gust limits --tmp` sizes this instance's /tmp.
        var sized = sandbox
        if let tmpBytes = confinement.tmpBytes { sized.tmpBytes = tmpBytes }
        if let holders, let holder = holders.holder(app: app, number: number, sandbox: sandbox, ids: ids) {
            do {
                return try enter(
                    holder, executable: executable, arguments: arguments, release: release, socketDirectory: socketDirectory,
                    socketsWritable: layout.bindsOwnSocket, environment: environment,
                    marker: marker, tmpBytes: sized.tmpBytes, confinement: confinement, passing: passing, onOutput: onOutput, onExit: onExit
                )
            } catch let error as SpawnError where error.enteringSandbox {
                // Nothing of the app ran: this start is bwrap's, the next one makes a new holder.
                holders.discard(holder)
            }
        }
        var argv = sized.directCommand(
            app: ids,
            mounts: [
                .init(release.path, at: Sandbox.appDirectory),
                .init(socketDirectory, at: Sandbox.socketDirectory, writable: layout.bindsOwnSocket),
            ],
            directory: Sandbox.appDirectory, executable: Sandbox.appDirectory + "/" + executable, arguments: arguments,
            passing: passing.count
        )
        // bwrap is spawned with no shell: the descriptors it reads follow those passed on.
        var bwrapReads: [Int32] = []
        defer { bwrapReads.forEach { close($0) } }
        func openForBwrap(_ path: String, _ flags: Int32) throws {
            let fd = open(path, flags | O_CLOEXEC)
            guard fd >= 0 else { throw SpawnError("Cannot open \(path) for bwrap: \(String(cString: strerror(errno)))") }
            bwrapReads.append(fd)
        }
        if let seccompFile = sized.seccompFile { try openForBwrap(seccompFile, O_RDONLY) }
        if ids != nil { try openForBwrap("/dev/null", O_WRONLY) }  // its info, which gustd does not read
        // bwrap runs outside the sandbox as gustd's uid, and is no setuid program: the dynamic loader
        // acts on its environment (LD_PRELOAD naming a library the app pushed). So it gets only the
        // marker, and sets the app's environment for what it starts from arguments read from a file
        // in memory (`--args`), not its command line, which every user of the host can read.
        let environmentArguments = try Self.environmentArguments(environment)
        bwrapReads.append(environmentArguments)
        argv.insert(contentsOf: ["--args", String(Sandbox.directDescriptor(passing.count + bwrapReads.count - 1))], at: 1)
        var bwrapEnvironment: [String: String] = [:]
        if environment[marker.name] == marker.value { bwrapEnvironment[marker.name] = marker.value }
        var block: [Int32] = [-1, -1]
        if ids != nil {
            guard gust_pipe_cloexec(&block) == 0 else { throw SpawnError("Cannot create a pipe: \(String(cString: strerror(errno)))") }
        }
        // Spawned on gustd's spawn thread with PR_SET_PDEATHSIG: a SIGKILLed gustd takes bwrap with it,
        // and so the sandbox (--die-with-parent).
        var confinement = confinement
        confinement.diesWithGustd = true
        // No RLIMIT_NPROC here: bwrap forks as gustd's uid, and the user namespace it makes would record
        // the limit for every process of gustd's uid (the kernel checks each level's count); an entered
        // start takes it only once it is the app's uid.
        confinement.processLimit = nil
        // What the shell inside did before setpriv: an umask gustd's uid can connect through.
        if ids != nil { confinement.fileModeMask = 0 }
        let (ids, sandbox) = (ids, sandbox)
        let writeEnd: Int32? = ids == nil ? nil : block[1]
        let prepare: ((Int32) throws -> Void)? = ids == nil ? nil : { try Self.boundUserNamespace($0) }
        let descriptors = passing + bwrapReads
        return try InstanceProcess(
            executable: argv[0], arguments: Array(argv.dropFirst()), environment: bwrapEnvironment, directory: "/",
            standardInput: ids == nil ? nil : block[0], marker: marker,
            confinement: confinement, passing: descriptors, onOutput: onOutput, onExit: onExit,
            started: { pid in try sandbox.release(pid, app: ids, unblocking: writeEnd, wrapped: false, prepare: prepare) }
        )
    }

    /// A file in memory holding `--clearenv` and a `--setenv NAME VALUE` for each of `environment`,
    /// NUL-separated, as bwrap's `--args` reads them, read from its start.
    static func environmentArguments(_ environment: [String: String]) throws -> Int32 {
        let fd = gust_memfd_cloexec("gust-sandbox-environment")
        guard fd >= 0 else { throw SpawnError("Cannot make the sandbox's environment file: \(String(cString: strerror(errno)))") }
        var bytes = Array("--clearenv".utf8) + [0]
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) {
            bytes += Array("--setenv".utf8) + [0] + Array(name.utf8) + [0] + Array(value.utf8) + [0]
        }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else {
                let reason = String(cString: strerror(errno))
                close(fd)
                throw SpawnError("Cannot write the sandbox's environment file: \(reason)")
            }
            offset += written
        }
        lseek(fd, 0, SEEK_SET)
        return fd
    }

    /// Starts the program in `holder`'s prepared sandbox: gustd's child, PID 1 of fresh PID, IPC and
    /// UTS namespaces, in a mount namespace of its own with the release and socket directory,
    /// as the app's uid inside with no capability, `no_new_privs` and the seccomp filter.
    private func enter(
        _ holder: SandboxHolders.Holder, executable: String, arguments: [String], release: URL, socketDirectory: String,
        socketsWritable: Bool, environment: [String: String], marker: StragglerMarker, tmpBytes: Int, confinement: SpawnConfinement, passing: [Int32],
        onOutput: @escaping @Sendable ([String], InstanceProcess.StandardStream) -> Void,
        onExit: @escaping @Sendable (Int32) -> Void
    ) throws -> InstanceProcess {
        let inside = SandboxIdentity.appUIDInside
        let entry = SpawnEntry(
            ownerUserNamespace: holder.ownerUserNamespace, userNamespace: holder.userNamespace,
            mountNamespace: holder.mountNamespace, release: release.path, sockets: socketDirectory, socketsWritable: socketsWritable,
            tmpBytes: tmpBytes,
            uid: inside, gid: inside, setsGroups: ids != nil,
            seccomp: sandbox.seccompFile == nil ? nil : Sandbox.seccompProgram
        )
        var confinement = confinement
        confinement.diesWithGustd = true
        if ids != nil { confinement.fileModeMask = 0 }
        return try withExtendedLifetime(holder) {
            try InstanceProcess(
                executable: Sandbox.appDirectory + "/" + executable, arguments: arguments, environment: environment,
                directory: Sandbox.appDirectory,
                marker: marker, confinement: confinement, passing: passing, onOutput: onOutput, onExit: onExit, entering: entry
            )
        }
    }

    /// What the shell inside did first, done from outside before the sandbox goes on: no user
    /// namespace can be made inside (`max_user_namespaces` 0 in the sandbox's own, where gustd's uid
    /// is 0 and has CAP_SYS_RESOURCE), so nothing there can map itself a new root. The files are
    /// opened inside that namespace (`gust_open_as_app`), written by gustd, which owns it.
    ///
    /// The kernel's per-user counts of the namespace are bounded there too (`namespaceBounds`): what
    /// the app's uid takes of them is also charged to the namespace's owner, gustd's uid, whose
    /// counts in the host's namespace are shared by every app (128 inotify instances in all, by
    /// default). Without a bound of its own, one app could take them all and leave the others none.
    static func boundUserNamespace(_ pid: Int32) throws {
        let namespace = open("/proc/\(pid)/ns/user", O_RDONLY | O_CLOEXEC)
        guard namespace >= 0 else { throw SpawnError("Cannot open the user namespace of sandbox \(pid): \(String(cString: strerror(errno)))") }
        defer { close(namespace) }
        // A bound this kernel has no file for (fanotify's before Linux 5.13) is left out; the first is required.
        let bounds = namespaceBounds.enumerated().filter { $0.offset == 0 || access("/proc/sys/user/" + $0.element.name, F_OK) == 0 }.map(\.element)
        let paths: [UnsafePointer<CChar>?] = bounds.map { UnsafePointer(strdup("/proc/sys/user/" + $0.name)) }
        defer { paths.forEach { free(UnsafeMutablePointer(mutating: $0)) } }
        var files = [Int32](repeating: -1, count: bounds.count)
        var step: Int32 = 0
        let result = paths.withUnsafeBufferPointer { pointers in
            files.withUnsafeMutableBufferPointer { gust_open_as_app(namespace, 0, pointers.baseAddress, Int32(bounds.count), $0.baseAddress, &step) }
        }
        defer { files.filter { $0 >= 0 }.forEach { close($0) } }
        guard result == 0 else {
            throw SpawnError("Cannot bound the user namespace of sandbox \(pid) (step \(step)): \(String(cString: strerror(result)))")
        }
        for (file, bound) in zip(files, bounds) {
            let value = String(bound.value)
            guard write(file, value, value.utf8.count) == value.utf8.count else {
                throw SpawnError("Cannot set \(bound.name) in sandbox \(pid): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// The per-user bounds set in each sandbox's user namespace (`/proc/sys/user/NAME`), for the app's
    /// uid there: no nested user namespace; inotify enough for a file watcher or two (Node's
    /// `fs.watch` uses one instance for all its watches); no fanotify, which no function needs.
    static let namespaceBounds: [(name: String, value: Int)] = [
        ("max_user_namespaces", 0),
        ("max_inotify_instances", 16),
        ("max_inotify_watches", 8192),
        ("max_fanotify_groups", 0),
        ("max_fanotify_marks", 0),
    ]

    /// The release's files are gustd's (mode 0600/0700 under its umask): others get to read them
    /// (`Sandbox.openToOthers`), once per release.
    private func openForApp(_ release: URL) throws {
        try opened.withLock { done in
            guard !done else { return }
            try Sandbox.openToOthers(release.path)
            done = true
        }
    }
}
