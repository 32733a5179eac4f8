import Foundation
import GustTesting
import Testing

@testable import GustBuild

/// The bubblewrap command line and the subordinate range, without running either.
struct SandboxCommandTests {
    let ids: (uid: UInt32, gid: UInt32) = (100_003, 100_003)

    func command(_ ids: (uid: UInt32, gid: UInt32)?, purpose: Sandbox.Purpose = .instance) -> [String] {
        let sandbox = Sandbox(identity: SandboxIdentity(range: .init(uidStart: 100_000, gidStart: 100_000, count: 65536), uid: 999, gid: 999))
        return sandbox.command(
            app: ids, mounts: [.init("/home/gust/releases/cats/v1", at: "/app"), .init("/home/gust/run/instances/ab", at: "/run/gust", writable: true)],
            directory: "/app", purpose: purpose, executable: "/app/.gust/start", arguments: []
        )
    }

    @Test func anInstanceGetsEveryNamespaceTheReleaseReadOnlyAndOnlyItsSocketDirectoryWritable() {
        let argv = command(ids)
        for flag in ["--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session"] {
            #expect(argv.contains(flag), "\(flag)")
        }
        #expect(!argv.contains("--share-net") && !argv.contains("--unshare-net"), "the host's network, filtered by nftables")
        #expect(pairs(argv, "--ro-bind").contains(["/home/gust/releases/cats/v1", "/app"]))
        #expect(pairs(argv, "--bind") == [["/home/gust/run/instances/ab", "/run/gust"]], "the socket directory is the only writable host path")
        #expect(argv.contains { $0.hasPrefix("/home/gust") && !$0.contains("releases/cats/v1") && !$0.contains("run/instances/ab") } == false)
        let tmp = argv.firstIndex(of: "/tmp")!
        #expect(argv[tmp - 1] == "--tmpfs" && argv[tmp - 5] == "--size", "a size-limited private /tmp")
        #expect(argv.contains("--proc") && !pairs(argv, "--ro-bind").contains(["/proc", "/proc"]))
    }

    /// detect and release only read the tree: no chown before the app's code runs.
    @Test func aBuildStepThatOwnsNothingChownsNothing() {
        let reading = command(ids, purpose: .build(owning: []))
        let script = reading[reading.firstIndex(of: "--")! + 3]
        #expect(!script.contains("chown"), "\(script)")
        #expect(script.contains("umask 022"))
        let compiling = command(ids, purpose: .build(owning: ["/app", "/cache"]))
        #expect(compiling[compiling.firstIndex(of: "--")! + 3].contains("chown -R 1000:1000 '/app' '/cache' || exit 125"))
    }

    /// The directories above a mount point are searchable by the app's uid (bwrap makes them with
    /// gustd's umask, 077): detect's buildpacks at `/buildpacks/N`.
    @Test func aMountPointsParentIsMadeSearchable() {
        let sandbox = Sandbox(identity: SandboxIdentity(range: .init(uidStart: 100_000, gidStart: 100_000, count: 65536), uid: 999, gid: 999))
        let argv = sandbox.command(
            app: ids, mounts: [.init("/srv/buildpacks/python", at: "/buildpacks/0"), .init("/srv/buildpacks/node", at: "/buildpacks/1"), .init("/srv/x", at: "/app")],
            directory: "/app", purpose: .build(owning: []), executable: "/bin/sh", arguments: []
        )
        let made = argv.indices.filter { argv[$0] == "--dir" }.map { (argv[$0 - 1], argv[$0 + 1]) }
        #expect(made.filter { $0.1 == "/buildpacks" }.count == 1)
        #expect(made.contains { $0.0 == "0755" && $0.1 == "/buildpacks" })
        #expect(argv.firstIndex(of: "/buildpacks")! < argv.firstIndex(of: "/buildpacks/0")!, "made before the mounts")
    }

    /// compile then release in one sandbox: the release descriptor is opened by the shell outside,
    /// compile runs without it, and release only after compile succeeded and its processes were killed.
    @Test func compileThenReleaseKeepsTheReleaseDescriptorFromCompile() {
        let purpose = Sandbox.Purpose.compileThenRelease(owning: ["/app"], release: "/buildpack/bin/release", output: "/home/gust/tmp/build-cats-0a1b2c3d/release.out")
        for ids in [ids, nil] as [(uid: UInt32, gid: UInt32)?] {
            let argv = command(ids, purpose: purpose)
            #expect(argv[2].contains("5>'/home/gust/tmp/build-cats-0a1b2c3d/release.out'"), "\(argv[2])")
            let script = argv[argv.lastIndex(of: "--")! + 3]
            let lines = script.split(separator: "\n").map(String.init)
            let compile = lines.firstIndex { $0.hasSuffix("\"$@\" </dev/null 5>&-") }
            let kill = lines.firstIndex { $0.contains("kill -9 -1") }
            let release = lines.firstIndex { $0.contains("/buildpack/bin/release") }
            #expect(compile != nil && kill != nil && release != nil, "\(script)")
            if let compile, let kill, let release { #expect(compile < kill && kill < release) }
            #expect(script.contains("[ \"$status\" -eq 0 ] || exit \"$status\""))
            #expect(script.contains(">&5 2>&1 5>&-") && script.contains("echo \"gust-release-exit $?\" >&5"))
            if ids != nil {
                #expect(script.contains("setpriv --reuid=1000 --regid=1000 --clear-groups --inh-caps=-all -- /bin/sh -c 'tries=0; while :; do kill -9 -1"), "killed as the app's uid: \(script)")
                #expect(script.contains("chown -R 1000:1000 '/app' || exit 125"))
            }
        }
    }

    @Test func withAnAppUidBwrapWaitsForItsMapAndTheAppDropsToUid1000WithNoNestedNamespaces() {
        let argv = command(ids)
        #expect(argv[0] == "/bin/sh" && argv[3] == Sandbox.bwrap, "a shell opens bwrap's info descriptor and waits for it")
        #expect(argv[2] == "\"$0\" \"$@\" 3>/dev/null; exit $?")
        #expect(pairs(argv, "--userns-block-fd") == [["0"]])
        let script = argv[argv.firstIndex(of: "--")! + 3]
        #expect(script.contains("echo 0 > /proc/sys/user/max_user_namespaces || exit 125"))
        #expect(script.contains("setpriv --reuid=1000 --regid=1000 --clear-groups --inh-caps=-all"))
        #expect(script.contains("umask 000"), "gustd, another uid, connects to the socket the instance makes")
        #expect(!argv.contains("CAP_CHOWN"), "an instance's shell needs no chown")
    }

    @Test func withoutARangeEveryAppRunsAsGustdsUidWithNestedNamespacesRefusedByBwrap() {
        let argv = command(nil)
        #expect(Array(argv.prefix(4)) == ["/bin/sh", "-c", "\"$0\" \"$@\"; exit $?", Sandbox.bwrap])
        #expect(argv.contains("--disable-userns"))
        #expect(pairs(argv, "--uid") == [["1000"]])
        #expect(Array(argv.suffix(2)) == ["--", "/app/.gust/start"])
    }

    /// An instance's start: bwrap with no shell around it or inside, its descriptors after those passed on.
    @Test(.scratchDirectory) func anInstanceStartsBwrapDirectlyAndSetprivRunsTheAppWithNoShell() throws {
        var sandbox = Sandbox(identity: SandboxIdentity(range: .init(uidStart: 100_000, gidStart: 100_000, count: 65536), uid: 999, gid: 999))
        sandbox = try sandbox.withSeccompFilter(in: ScratchDirectory.current)
        let mounts: [Sandbox.Mount] = [.init("/home/gust/releases/cats/v1", at: "/app")]
        let argv = sandbox.directCommand(app: ids, mounts: mounts, directory: "/app", executable: "/app/.gust/start", arguments: [], passing: 1)
        #expect(argv[0] == Sandbox.bwrap && !argv.contains("/bin/sh"), "\(argv)")
        #expect(Sandbox.directDescriptor(0) == 3, "what is passed on keeps its number inside")
        let filtered = sandbox.seccompFile != nil  // x86-64 only
        #expect(pairs(argv, "--seccomp") == (filtered ? [["4"]] : []) && pairs(argv, "--info-fd") == [[filtered ? "5" : "4"]])
        #expect(pairs(argv, "--userns-block-fd") == [["0"]])
        #expect(Array(argv.suffix(8)) == [
            "--", Sandbox.setpriv, "--reuid=1000", "--regid=1000", "--clear-groups", "--inh-caps=-all", "--", "/app/.gust/start",
        ])
        #expect(!argv.contains("CAP_SYS_RESOURCE"), "gustd refuses nested namespaces from outside: nothing inside needs it")
        #expect(argv.contains("CAP_SETUID") && argv.contains("CAP_SETGID"))
        let asGustd = sandbox.directCommand(app: nil, mounts: mounts, directory: "/app", executable: "/app/.gust/start", arguments: [])
        #expect(pairs(asGustd, "--seccomp") == (filtered ? [["3"]] : []) && !asGustd.contains("--info-fd"))
        #expect(asGustd.contains("--disable-userns") && Array(asGustd.suffix(2)) == ["--", "/app/.gust/start"])
    }

    @Test func aBuildHandsItsDirectoriesToTheAppAndReclaimTakesThemBack() {
        let build = command(ids, purpose: .build(owning: ["/app", "/cache"]))
        let script = build[build.firstIndex(of: "--")! + 3]
        #expect(script.contains("chown -R 1000:1000 '/app' '/cache' || exit 125"))
        #expect(build.contains("CAP_CHOWN"))
        let reclaim = command(ids, purpose: .reclaim)
        #expect(Array(reclaim.suffix(4)) == ["--", "/bin/chown", "-R", "0:0"])
    }

    @Test func appNumbersMapIntoTheRangeAndPastItIsAnError() throws {
        let identity = SandboxIdentity(range: .init(uidStart: 100_000, gidStart: 200_000, count: 10), uid: 999, gid: 999)
        let ids = try #require(try identity.hostIDs(ofApp: 3))
        #expect(ids.uid == 100_003 && ids.gid == 200_003)
        #expect(throws: SandboxError.self) { try identity.hostIDs(ofApp: 10) }
        #expect(try SandboxIdentity(range: nil, uid: 0, gid: 0).hostIDs(ofApp: 3) == nil)
    }

    @Test(.scratchDirectory) func theSubordinateRangeIsReadByNameOrUid() throws {
        let file = ScratchDirectory.current.appendingPathComponent("subuid")
        try "other:1:65536\ngust:100000:65536\n1001:300000:1000\n".write(to: file, atomically: true, encoding: .utf8)
        let gust = try #require(SandboxIdentity.subordinate(file.path, ["999", "gust"]))
        #expect(gust.start == 100_000 && gust.count == 65536)
        let numbered = try #require(SandboxIdentity.subordinate(file.path, ["1001"]))
        #expect(numbered.start == 300_000 && numbered.count == 1000)
        #expect(SandboxIdentity.subordinate(file.path, ["nobody"]) == nil)
    }

    /// The values after each occurrence of `flag` (two for binds, one otherwise).
    func pairs(_ argv: [String], _ flag: String) -> [[String]] {
        let width = flag.hasSuffix("bind") ? 2 : 1
        return argv.indices.filter { argv[$0] == flag }.map { Array(argv[($0 + 1)...($0 + width)]) }
    }
}

/// A sandbox on a stack: the stack's system, and of the host's only its name resolution.
struct SandboxOnStackTests {
    func pairs(_ argv: [String], _ flag: String) -> [[String]] {
        argv.indices.filter { argv[$0] == flag }.map { Array(argv[($0 + 1)...($0 + 2)]) }
    }

    @Test func aSandboxOnAStackBindsTheStacksSystemAndNothingOfTheHostsButItsResolver() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("stack-root-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        for directory in ["usr/bin", "usr/lib", "etc"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(directory), withIntermediateDirectories: true)
        }
        try FileManager.default.createSymbolicLink(atPath: root.path + "/bin", withDestinationPath: "usr/bin")
        try FileManager.default.createSymbolicLink(atPath: root.path + "/lib", withDestinationPath: "usr/lib")
        _ = FileManager.default.createFile(atPath: root.path + "/etc/resolv.conf", contents: nil)  // a placeholder; no hosts
        let sandbox = Sandbox(identity: SandboxIdentity(range: nil, uid: 999, gid: 999), root: root.path)
        let argv = sandbox.command(app: nil, mounts: [], directory: "/", purpose: .instance, executable: "/usr/bin/python3", arguments: [])
        let binds = pairs(argv, "--ro-bind")
        #expect(binds.contains([root.path + "/usr", "/usr"]))
        #expect(binds.contains([root.path + "/etc", "/etc"]))
        #expect(pairs(argv, "--symlink").contains(["usr/bin", "/bin"]) && pairs(argv, "--symlink").contains(["usr/lib", "/lib"]))
        #expect(!argv.contains("/lib64") && !argv.contains("/sbin"), "links the stack lacks are not made from the host's")
        #expect(pairs(argv, "--ro-bind-try") == [["/etc/resolv.conf", "/etc/resolv.conf"]], "the host's resolver only, and only over a placeholder")
        #expect(!binds.contains(["/usr", "/usr"]))
    }
}
