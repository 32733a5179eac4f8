import Foundation
import GustCore
import GustTesting
import Testing

/// `scripts/install.sh` against a scratch root (`--root`), with real useradd,
/// sshd, systemd-analyze and git: a second run changes nothing, what it did
/// not create is refused, sshd reads its Match block as meant, the unit
/// verifies, and a push over ssh through what it installed goes live.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct InstallerTests {
    static var script: String { GustBinaries.sourceRoot.appendingPathComponent("scripts/install.sh").path }
    static var unit: URL { GustBinaries.sourceRoot.appendingPathComponent("contrib/systemd/gustd.service") }

    /// A scratch root holding the files useradd and the installer read: this machine's users and sshd config.
    static func scratchRoot(_ directory: URL, sshdConfig: String? = nil) throws -> URL {
        let root = directory.appendingPathComponent("root")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("etc/ssh/sshd_config.d"), withIntermediateDirectories: true)
        for file in ["passwd", "group", "shadow", "gshadow", "login.defs", "subuid", "subgid"]
        where FileManager.default.fileExists(atPath: "/etc/\(file)") {
            try FileManager.default.copyItem(atPath: "/etc/\(file)", toPath: root.appendingPathComponent("etc/\(file)").path)
        }
        let config = sshdConfig ?? "Include /etc/ssh/sshd_config.d/*.conf\nPort 22\n"
        try config.write(to: root.appendingPathComponent("etc/ssh/sshd_config"), atomically: true, encoding: .utf8)
        return root
    }

    /// gustd.service's root step for cgroup v1 (`ExecStartPre=+`), as the unit names it and as it is in the checkout.
    static let cgroupStep = "/usr/local/lib/gust/gust-cgroups.sh"
    static var cgroupScript: String { GustBinaries.sourceRoot.appendingPathComponent("contrib/systemd/gust-cgroups.sh").path }

    /// The unit with its commands pointed at files that exist here (verify needs them executable).
    static func runnable(_ unit: String, gustd: String = GustBinaries.gustd, cgroupStep: String = cgroupScript) -> String {
        unit.replacingOccurrences(of: "ExecStart=/usr/local/bin/gustd", with: "ExecStart=\(gustd)")
            .replacingOccurrences(of: Self.cgroupStep, with: cgroupStep)
    }

    static func install(_ root: URL, _ extra: [String] = []) throws -> CommandResult {
        try Command.run("/bin/bash", [script, "--root", root.path, "--bin", GustBinaries.directory.path] + extra, timeout: 600)
    }

    /// Every file under `root` with its checksum, mode and owner: what "changes nothing" compares.
    static func fingerprint(_ root: URL) throws -> String {
        let listing = try Command.run("/bin/sh", ["-c", "cd \"$1\" && find . -printf '%p %m %U:%G\\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum", "sh", root.path])
        #expect(listing.status == 0, "\(listing.stderr)")
        return listing.stdout
    }

    @Test(.scratchDirectory) func theUnitPassesSystemdAnalyzeVerify() throws {
        // verify needs ExecStart to exist; it reports problems on stderr (and still exits 0 for most).
        let text = try String(contentsOf: Self.unit, encoding: .utf8)
        #expect(text.contains("ExecStart=/usr/local/bin/gustd "))
        // On cgroup v1, root's step before gustd: the `+` runs it with full privileges, with gustd's options.
        #expect(text.contains("\nExecStartPre=+\(Self.cgroupStep) gust $GUSTD_OPTIONS\n"))
        let copy = ScratchDirectory.current.appendingPathComponent("gustd.service")
        try Self.runnable(text).write(to: copy, atomically: true, encoding: .utf8)
        let verified = try Command.run("systemd-analyze", ["verify", copy.path])
        #expect(verified.status == 0 && verified.stderr.isEmpty, "\(verified.output)")
        // CPUWeight=: gustd's own share under systemd, the same as `gustd --cpu-weight`'s default (GustdCgroup.defaultWeight).
        for directive in ["Restart=on-failure", "KillSignal=SIGTERM", "KillMode=mixed", "Delegate=yes", "LimitNOFILE=", "CPUWeight=400"] {
            #expect(text.contains("\n\(directive)"), "\(directive)")
        }
        for directive in ["NoNewPrivileges", "RestrictNamespaces", "SystemCallFilter", "ProtectKernelTunables", "ProtectControlGroups"] {
            #expect(!text.contains("\n\(directive)="), "\(directive) would break the sandbox")
        }
        // Longer than gustd's own bound on its drain: the function limit (15 s) + the stop grace (3 s) + 5 s.
        let stop = try #require(text.split(separator: "\n").first { $0.hasPrefix("TimeoutStopSec=") })
        #expect(Int(stop.dropFirst("TimeoutStopSec=".count).dropLast()) ?? 0 > 23)

        // A unit systemd would not take fails the same check: the check is real.
        try Self.runnable(text)
            .replacingOccurrences(of: "KillMode=mixed", with: "KillMode=sometimes")
            .write(to: copy, atomically: true, encoding: .utf8)
        #expect(try !Command.run("systemd-analyze", ["verify", copy.path]).stderr.isEmpty)
    }

    /// gustd.socket and gustd-https.socket verify with the service they feed, under the names gustd knows them by.
    @Test(.scratchDirectory) func theSocketUnitsPassSystemdAnalyzeVerifyAndFeedTheService() throws {
        let scratch = ScratchDirectory.current
        let source = GustBinaries.sourceRoot.appendingPathComponent("contrib/systemd")
        let service = try String(contentsOf: Self.unit, encoding: .utf8)
        try Self.runnable(service).write(to: scratch.appendingPathComponent("gustd.service"), atomically: true, encoding: .utf8)
        #expect(service.contains("\nWants=gustd.socket\n") && service.contains("\nAfter=gustd.socket\n"))
        var paths = [scratch.appendingPathComponent("gustd.service").path]
        for (name, descriptorName) in [("gustd.socket", "http"), ("gustd-https.socket", "https")] {
            let text = try String(contentsOf: source.appendingPathComponent(name), encoding: .utf8)
            #expect(text.contains("\nFileDescriptorName=\(descriptorName)\n") && text.contains("\nService=gustd.service\n"), "\(name)")
            try text.write(to: scratch.appendingPathComponent(name), atomically: true, encoding: .utf8)
            paths.append(scratch.appendingPathComponent(name).path)
        }
        let verified = try Command.run("systemd-analyze", ["verify"] + paths)
        #expect(verified.status == 0 && verified.stderr.isEmpty, "\(verified.output)")

        // A socket unit systemd would not take fails the same check.
        let socket = try String(contentsOf: source.appendingPathComponent("gustd.socket"), encoding: .utf8)
        try socket.replacingOccurrences(of: "FileDescriptorName=http", with: "FileDescriptorName=a:b")
            .write(to: scratch.appendingPathComponent("gustd.socket"), atomically: true, encoding: .utf8)
        #expect(try !Command.run("systemd-analyze", ["verify"] + paths).stderr.isEmpty)
    }

    /// The unit's cgroup v1 step (`gust-cgroups.sh`) on a machine without cgroup v1: a v2 mount, played by
    /// a directory that has `cgroup.controllers` and controller directories that are no v1 hierarchy
    /// (not cgroupfs). It makes and changes nothing (Delegate=yes does the job there) and succeeds,
    /// so gustd still starts; a name that is not gustd's plain `--cgroup-root` is refused.
    @Test(.scratchDirectory) func theCgroupStepLeavesAMachineWithoutCgroupV1Alone() throws {
        let mount = ScratchDirectory.current.appendingPathComponent("cgroup")
        for file in ["cgroup.controllers", "memory/memory.limit_in_bytes", "pids/cgroup.procs", "cpu/cpu.cfs_period_us"] {
            let path = mount.appendingPathComponent(file)
            try FileManager.default.createDirectory(at: path.deletingLastPathComponent(), withIntermediateDirectories: true)
            try "memory pids cpu\n".write(to: path, atomically: true, encoding: .utf8)
        }
        let before = try Self.fingerprint(mount)
        let ran = try Command.run("/bin/bash", [Self.cgroupScript, "--mount", mount.path, "root", "--cgroup-root", "gust"])
        #expect(ran.status == 0, "\(ran.output)")
        #expect(ran.stdout.contains("nothing to do"), "\(ran.output)")
        #expect(try Self.fingerprint(mount) == before, "nothing was made or changed")
        #expect(!FileManager.default.fileExists(atPath: mount.appendingPathComponent("memory/gust").path))

        let refused = try Command.run("/bin/bash", [Self.cgroupScript, "--mount", mount.path, "root", "--cgroup-root", "../../etc"])
        #expect(refused.status != 0 && refused.stderr.contains("not a plain name"), "\(refused.output)")
    }

    @Test(.scratchDirectory) func installingTwiceChangesNothingAndAPushOverSSHGoesLive() throws {
        let scratch = ScratchDirectory.current
        let root = try Self.scratchRoot(scratch)
        let admin = try SSHKeyPair.generate(in: scratch, name: "alice")
        let first = try Self.install(root, ["--admin-key", admin.publicKey.path, "--admin-name", "alice"])
        #expect(first.status == 0, "\(first.output)")
        let installed = try Self.fingerprint(root)

        let second = try Self.install(root, ["--admin-key", admin.publicKey.path, "--admin-name", "alice"])
        #expect(second.status == 0, "\(second.output)")
        #expect(second.stdout.contains("Nothing to change"), "\(second.stdout)")
        #expect(try Self.fingerprint(root) == installed, "the second run changed files")

        // The user, its sandbox ids, its home.
        let passwd = try String(contentsOf: root.appendingPathComponent("etc/passwd"), encoding: .utf8)
        let entry = try #require(passwd.split(separator: "\n").first { $0.hasPrefix("gust:") })
        #expect(entry.hasSuffix(":/home/gust:/bin/sh"), "\(entry)")
        #expect(try String(contentsOf: root.appendingPathComponent("etc/subuid"), encoding: .utf8).contains("gust:"))
        #expect(try String(contentsOf: root.appendingPathComponent("etc/subgid"), encoding: .utf8).contains("gust:"))

        // sshd itself reads the installed block: gust's keys come from GUST_HOME, anyone else's as before.
        let sshd = scratch.appendingPathComponent("sshd-check")
        try FileManager.default.createDirectory(at: sshd, withIntermediateDirectories: true)
        let hostKey = try SSHKeyPair.generate(in: sshd, name: "host")
        let config = sshd.appendingPathComponent("sshd_config")
        try "HostKey \(hostKey.privateKey.path)\nInclude \(root.path)/etc/ssh/sshd_config.d/gust.conf\n".write(to: config, atomically: true, encoding: .utf8)
        #expect(try Command.run(SSHServer.executable, ["-t", "-f", config.path]).status == 0)
        let forGust = try Command.run(SSHServer.executable, ["-T", "-C", "user=gust,host=laptop,addr=127.0.0.1", "-f", config.path]).stdout
        #expect(forGust.contains("authorizedkeysfile /home/gust/.gust/ssh/authorized_keys"), "\(forGust)")
        #expect(forGust.contains("permittty no") && forGust.contains("disableforwarding yes"))
        let forOthers = try Command.run(SSHServer.executable, ["-T", "-C", "user=alice,host=laptop,addr=127.0.0.1", "-f", config.path]).stdout
        #expect(!forOthers.contains("/home/gust/.gust"))

        // The installed unit verifies too (its ExecStart pointed at the scratch root's gustd).
        let unit = try String(contentsOf: root.appendingPathComponent("etc/systemd/system/gustd.service"), encoding: .utf8)
        let unitCopy = scratch.appendingPathComponent("installed.service")
        try Self.runnable(unit, gustd: root.path + "/usr/local/bin/gustd", cgroupStep: root.path + Self.cgroupStep)
            .write(to: unitCopy, atomically: true, encoding: .utf8)
        let verified = try Command.run("systemd-analyze", ["verify", unitCopy.path])
        #expect(verified.status == 0 && verified.stderr.isEmpty, "\(verified.output)")
        for name in ["gustd.socket", "gustd-https.socket"] {
            #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("etc/systemd/system/\(name)").path), "\(name) installed")
        }
        // The cgroup v1 step the unit runs as root is installed, executable, as in the checkout.
        let step = root.path + Self.cgroupStep
        #expect(FileManager.default.isExecutableFile(atPath: step))
        #expect(FileManager.default.contentsEqual(atPath: step, andPath: Self.cgroupScript))
        #expect(unit.contains("\nExecStartPre=+\(Self.cgroupStep) gust $GUSTD_OPTIONS\n"), "\(unit)")

        // A push over ssh with the admin key, through everything the installer put down: the keys
        // file and its forced command, the installed gust, gust-receive, hooks and buildpacks, and
        // gustd. (This sshd logs in the test's own user: the scratch root's gust exists only there.)
        let home = GustHome(path: root.path + "/home/gust/.gust")
        // That user is root here: the home becomes its own, as it is gust's on a real host (root in a
        // sandboxed build's user namespace has no CAP_DAC_OVERRIDE over gust's 0700 directories).
        if getuid() == 0 { _ = try Command.run("chown", ["-R", "0:0", root.path + "/home/gust"]) }
        let server = try SSHServer(authorizedKeys: home.authorizedKeys, directory: scratch.appendingPathComponent("sshd"))
        defer { server.stop() }
        let gustd = try GustdProcess(home: home, executable: root.path + "/usr/local/bin/gustd")
        defer { gustd.stop() }
        let work = try GitWorkspace(at: scratch.appendingPathComponent("work"), copying: GustBinaries.sourceRoot.appendingPathComponent("examples/python-cats"))
        try work.commit("Cats")
        let push = try work.push(to: server.url("cats.git"), environment: ["GIT_SSH_COMMAND": SSHServer.gitSSHCommand(key: admin.privateKey)])
        #expect(push.status == 0, "\(push.output)\n\(server.logText)")
        #expect(push.stderr.contains("v1 is live"), "\(push.stderr)")
        let hook = try String(contentsOf: home.repository(try AppName("cats")).appendingPathComponent("hooks/pre-receive"), encoding: .utf8)
        #expect(hook.contains(root.path + "/usr/local/bin/gust-receive"), "\(hook)")
        #expect(try HTTPClient.request(port: gustd.port, "GET", "/apps/cats/_/health").status == 200)
    }

    @Test(.scratchDirectory) func aMatchBlockOrAFileItDidNotWriteIsRefused() throws {
        let foreign = "Include /etc/ssh/sshd_config.d/*.conf\nMatch User gust\n    AuthorizedKeysFile /srv/keys\n"
        let root = try Self.scratchRoot(ScratchDirectory.current.appendingPathComponent("a"), sshdConfig: foreign)
        let passwd = try String(contentsOf: root.appendingPathComponent("etc/passwd"), encoding: .utf8)
        let refused = try Self.install(root)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("/etc/ssh/sshd_config already has a Match block for the user gust"), "\(refused.output)")
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("etc/ssh/sshd_config.d/gust.conf").path))
        #expect(try String(contentsOf: root.appendingPathComponent("etc/ssh/sshd_config"), encoding: .utf8) == foreign)
        // Refused before anything changed: no user, no manifest.
        #expect(try String(contentsOf: root.appendingPathComponent("etc/passwd"), encoding: .utf8) == passwd)
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("var/lib/gust").path))

        // A unit an admin wrote is not overwritten.
        let other = try Self.scratchRoot(ScratchDirectory.current.appendingPathComponent("b"))
        let unit = other.appendingPathComponent("etc/systemd/system/gustd.service")
        try FileManager.default.createDirectory(at: unit.deletingLastPathComponent(), withIntermediateDirectories: true)
        try "[Service]\nExecStart=/opt/mine\n".write(to: unit, atomically: true, encoding: .utf8)
        let kept = try Self.install(other)
        #expect(kept.status != 0)
        #expect(kept.stderr.contains("/etc/systemd/system/gustd.service exists and was not written by this installer"), "\(kept.output)")
        #expect(try String(contentsOf: unit, encoding: .utf8) == "[Service]\nExecStart=/opt/mine\n")
    }
}
