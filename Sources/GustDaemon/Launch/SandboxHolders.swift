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
/// the holders (its table is `HolderMakings`): made ahead of the app's first start, in the
/// background, when gustd knows it serves the app (`prepare`: at gustd's start, at a deploy),
/// else at its first sandboxed start, and reused by its later ones (zygotes of every release,
/// Node instances); a start that finds its holder being made waits for that making. Stopped by
/// PID with the app (`stop(app:)`: it is no longer served or is destroyed) and with gustd
/// (`stopAll`, and PR_SET_PDEATHSIG when gustd is killed). A holder that has exited is replaced
/// at the next start; when none can be made the start uses bwrap (`SandboxSpawner`), never no sandbox.
final class SandboxHolders: Sendable {
    struct Key: Hashable, Sendable {
        var app: String
        /// The app's number (its uid with app uids): a destroyed app's name may be given to a new one.
        var number: Int
        var root: String?
    }

    /// One holder: its bwrap (gustd's child) and the namespaces a start enters, opened once.
    final class Holder: MadeHolder {
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

    private let makings: HolderMakings<Key, Holder>

    /// - Parameters:
    ///   - concurrency: holders made in the background at once (half the cores, at least one).
    ///   - note: said in gustd's log when a holder cannot be made.
    init(concurrency: Int = ProcessInfo.processInfo.activeProcessorCount / 2, note: @escaping @Sendable (String) -> Void = { _ in }) {
        makings = HolderMakings(concurrency: concurrency) { key, error, inBackground in
            let when = inBackground ? "ahead of its first start" : "for a start"
            note("app \(key.app): cannot prepare its sandbox \(when) (\(error)); its instances start with bubblewrap until one is made")
        }
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

    /// The app's live holder: made already, being made (waited for), or made now if it has none
    /// (or its holder exited); nil when gustd is stopping or none can be made (said in gustd's
    /// log): the start then uses bwrap.
    func holder(app: String, number: Int, sandbox: Sandbox, ids: (uid: UInt32, gid: UInt32)?) -> Holder? {
        makings.holder(Key(app: app, number: number, root: sandbox.root)) { try Self.make(sandbox: sandbox, ids: ids) }
    }

    /// Makes the app's holder in the background, unless it has one or one is being made: gustd
    /// serves the app, so its first start will want it. Returns at once.
    func prepare(app: String, number: Int, sandbox: Sandbox, ids: (uid: UInt32, gid: UInt32)?) {
        makings.prepare(Key(app: app, number: number, root: sandbox.root)) { try Self.make(sandbox: sandbox, ids: ids) }
    }

    /// A holder whose entry failed: stopped and forgotten, so that the next start makes a new one.
    func discard(_ holder: Holder) { makings.discard(holder) }

    /// Stops the app's holders (every root), and their makings under way or queued; its running
    /// instances keep their own namespaces.
    func stop(app: String) { makings.stop { $0.app == app } }

    /// Stops every holder; none is made after (gustd is stopping).
    func stopAll() { makings.stopAll() }

    /// The pids of the live holders' bwraps.
    var pids: [Key: pid_t] { makings.holders.mapValues { $0.process.pid } }

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
        let prepare: ((Int32) throws -> Void)? = ids == nil ? nil : { try SandboxSpawner.boundUserNamespace($0) }
        // No pipes for gustd to read for as long as the holder lives (two descriptors per app):
        // its stdout is /dev/null, its stderr a file in memory (memfd, close-on-exec: only the spawn
        // places it, as the child's fd 2) that gustd reads only if the making fails (bwrap says why
        // there) and closes once the holder runs.
        let errors = gust_memfd_cloexec("gust-holder-stderr")
        guard errors >= 0 else { throw SpawnError("Cannot make the holder's error file: \(String(cString: strerror(errno)))") }
        defer { close(errors) }
        // An error of bwrap's start carries bwrap's words from that file (they are nowhere else).
        let output = Sandbox.Output.file(errors)
        let process = try InstanceProcess(
            executable: argv[0], arguments: Array(argv.dropFirst()), environment: [:], directory: "/",
            standardInput: ids == nil ? nil : block[0], discardingOutput: errors, confinement: confinement, passing: info,
            onOutput: { _, _ in }, onExit: { _ in },
            started: { pid in try sandbox.release(pid, app: ids, unblocking: writeEnd, wrapped: false, prepare: prepare, output: output) }
        )
        do {
            // bwrap's first child is the sandbox's init; `sleep` is its child, in the namespaces to enter.
            let sleeper = try Sandbox.firstChild(of: Sandbox.firstChild(of: process.pid, output: output), output: output)
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
