#if canImport(Glibc)
import Glibc
#endif
import CGustSystem
import Foundation
import GustBuild
import GustCore
import Synchronization

/// The prepared sandboxes of gustd's apps, one *holder* per app and system root (the host's or a
/// stack's): a bwrap sandbox running `sleep infinity` (`Sandbox.holderCommand`) whose user and
/// mount namespaces each start of the app enters (`SpawnEntry`, `gust_spawn_entering`) instead of
/// bwrap building a sandbox per start (docs/security.md, "Prepared sandboxes"). The one owner of
/// the holders: made on an app's first sandboxed start and reused by its later ones (zygotes of
/// every release, Node instances), stopped by PID with the app (`stop(app:)`: it is no longer
/// served or is destroyed) and with gustd (`stopAll`, and PR_SET_PDEATHSIG when gustd is killed).
/// A holder that has exited is replaced at the next start; when none can be made the start uses
/// bwrap (`SandboxSpawner`), never no sandbox.
final class SandboxHolders: Sendable {
    struct Key: Hashable, Sendable {
        var app: String
        /// The app's number (its uid with app uids): a destroyed app's name may be given to a new one.
        var number: Int
        var root: String?
    }

    /// One holder: its bwrap (gustd's child) and the namespaces a start enters, opened once.
    final class Holder: Sendable {
        let process: InstanceProcess
        /// The user namespace owning the holder's mount namespace, the nested one (-1 if none), the mount one.
        let ownerUserNamespace: Int32
        let userNamespace: Int32
        let mountNamespace: Int32

        init(process: InstanceProcess, ownerUserNamespace: Int32, userNamespace: Int32, mountNamespace: Int32) {
            self.process = process
            self.ownerUserNamespace = ownerUserNamespace
            self.userNamespace = userNamespace
            self.mountNamespace = mountNamespace
        }

        var isAlive: Bool { !process.hasExited }

        /// Kills its bwrap by pid (its sandbox dies with it). Its namespace descriptors stay open
        /// until the last start that holds it has returned (`deinit`).
        func stop() {
            process.signal(SIGKILL)
        }

        deinit {
            for fd in [ownerUserNamespace, userNamespace, mountNamespace] where fd >= 0 { close(fd) }
        }
    }

    private struct State {
        var holders: [Key: Holder] = [:]
        var stopped = false
    }

    private let state = Mutex(State())
    /// Said in gustd's log when a holder cannot be made or has died.
    private let note: @Sendable (String) -> Void

    init(note: @escaping @Sendable (String) -> Void = { _ in }) {
        self.note = note
    }

    /// Whether this kernel can enter a prepared sandbox (`open_tree`, `move_mount`: Linux 5.2;
    /// `mount_setattr`: 5.12); the reason if not.
    static func unavailableReason() -> String? {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard parts.count == 2, (parts[0], parts[1]) >= (5, 12) else { return "Linux \(release) is older than 5.12 (mount_setattr)" }
        return nil
    }

    /// The app's live holder, made now if it has none (or its holder exited); nil when gustd is
    /// stopping or none can be made (said in gustd's log): the start then uses bwrap.
    func holder(app: String, number: Int, sandbox: Sandbox, ids: (uid: UInt32, gid: UInt32)?) -> Holder? {
        let key = Key(app: app, number: number, root: sandbox.root)
        let (existing, stopped): (Holder?, Bool) = state.withLock { state in
            if let holder = state.holders[key], !holder.isAlive {
                state.holders[key] = nil
                holder.stop()
            }
            return (state.holders[key], state.stopped)
        }
        if let existing { return existing }
        guard !stopped else { return nil }
        let made: Holder
        do { made = try Self.make(sandbox: sandbox, ids: ids) } catch {
            note("app \(app): cannot prepare its sandbox (\(error)); its instances start with bubblewrap")
            return nil
        }
        // Two first starts at once may both have made one: the first kept, the other stopped.
        let kept: Holder? = state.withLock { state in
            guard !state.stopped else { return nil }
            if let other = state.holders[key], other.isAlive { return other }
            state.holders[key] = made
            return made
        }
        if kept !== made { made.stop() }
        return kept
    }

    /// A holder whose entry failed: stopped and forgotten, so that the next start makes a new one.
    func discard(_ holder: Holder) {
        state.withLock { state in
            for (key, value) in state.holders where value === holder { state.holders[key] = nil }
        }
        holder.stop()
    }

    /// Stops the app's holders (every root); its running instances keep their own namespaces.
    func stop(app: String) {
        let holders = state.withLock { state in
            let keys = state.holders.keys.filter { $0.app == app }
            return keys.compactMap { state.holders.removeValue(forKey: $0) }
        }
        holders.forEach { $0.stop() }
    }

    /// Stops every holder; none is made after (gustd is stopping).
    func stopAll() {
        let holders = state.withLock { state in
            state.stopped = true
            defer { state.holders = [:] }
            return Array(state.holders.values)
        }
        holders.forEach { $0.stop() }
    }

    /// The pids of the live holders' bwraps.
    var pids: [Key: pid_t] { state.withLock { $0.holders.filter(\.value.isAlive).mapValues(\.process.pid) } }

    /// Spawns the holder's bwrap on gustd's spawn thread (PR_SET_PDEATHSIG: it dies with gustd),
    /// gives it the app's map (with ids) and refuses nested user namespaces in it, waits for its
    /// `sleep` and opens the namespaces a start enters.
    private static func make(sandbox: Sandbox, ids: (uid: UInt32, gid: UInt32)?) throws -> Holder {
        let argv = sandbox.holderCommand(app: ids)
        var block: [Int32] = [-1, -1]
        var info: [Int32] = []
        defer { info.forEach { close($0) } }
        if ids != nil {
            guard gust_pipe_cloexec(&block) == 0 else { throw SpawnError("Cannot create a pipe: \(String(cString: strerror(errno)))") }
            let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
            guard null >= 0 else { throw SpawnError("Cannot open /dev/null: \(String(cString: strerror(errno)))") }
            info.append(null)
        }
        var confinement = SpawnConfinement()
        confinement.diesWithGustd = true
        let writeEnd: Int32? = ids == nil ? nil : block[1]
        let prepare: ((Int32) throws -> Void)? = ids == nil ? nil : { try SandboxSpawner.refuseNestedUserNamespaces($0) }
        let process = try InstanceProcess(
            executable: argv[0], arguments: Array(argv.dropFirst()), environment: [:], directory: "/",
            standardInput: ids == nil ? nil : block[0], confinement: confinement, passing: info,
            onOutput: { _, _ in }, onExit: { _ in },
            started: { pid in try sandbox.release(pid, app: ids, unblocking: writeEnd, wrapped: false, prepare: prepare) }
        )
        do {
            // bwrap's first child is the sandbox's init; `sleep` is its child, in the namespaces to enter.
            let sleeper = try Sandbox.firstChild(of: Sandbox.firstChild(of: process.pid))
            let user = try openNamespace(sleeper, "user")
            let mount = try openNamespace(sleeper, "mnt")
            let owner = ioctl(mount, 0xb701)  // NS_GET_USERNS
            guard owner >= 0 else { throw SpawnError("Cannot find the owner of the holder's mount namespace: \(String(cString: strerror(errno)))") }
            let ownerHigh = fcntl(owner, F_DUPFD_CLOEXEC, 64)
            close(owner)
            var nestedFD = user
            if same(ownerHigh, user) {
                close(user)
                nestedFD = -1
            }
            return Holder(process: process, ownerUserNamespace: ownerHigh, userNamespace: nestedFD, mountNamespace: mount)
        } catch {
            process.signal(SIGKILL)
            throw error
        }
    }

    /// `/proc/PID/ns/NAME`, at a descriptor above those a spawn places its passed ones at (3, 4, …).
    private static func openNamespace(_ pid: pid_t, _ name: String) throws -> Int32 {
        let fd = open("/proc/\(pid)/ns/\(name)", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SpawnError("Cannot open the holder's \(name) namespace: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let high = fcntl(fd, F_DUPFD_CLOEXEC, 64)
        guard high >= 0 else { throw SpawnError("Cannot keep the holder's \(name) namespace: \(String(cString: strerror(errno)))") }
        return high
    }

    /// Whether two namespace descriptors name the same namespace (`user:[INODE]`).
    private static func same(_ first: Int32, _ second: Int32) -> Bool {
        let name = { (fd: Int32) in try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)") }
        return name(first) != nil && name(first) == name(second)
    }
}
