import Foundation
import GustCore
import GustTesting
import Testing

/// What a key may run over a real sshd, and what nobody may.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct SSHCommandTests {
    @Test(.scratchDirectory) func shellsAndEscapesAreRefusedAndNothingRuns() throws {
        let fixture = try SSHFixture()
        let alice = try fixture.keyPair("alice")
        try fixture.addKey("alice", alice, ["--admin"])
        let marker = fixture.root.appendingPathComponent("marker")

        let attempts: [(command: String, input: String?)] = [
            ("bash", "touch \(marker.path)\n"),
            ("sh -c 'touch \(marker.path)'", nil),
            ("touch \(marker.path); ls", nil),
            ("apps $(touch \(marker.path))", nil),
            ("apps `touch \(marker.path)`", nil),
            ("apps | touch \(marker.path)", nil),
            ("git-receive-pack '../x.git'", nil),
            ("git-receive-pack '/etc/passwd'", nil),
            ("git-upload-pack '../../etc'", nil),
            ("scp -t /tmp", nil),
            ("releases --home /tmp cats", nil),
            ("releases export cats v1 --archive \(marker.path)", nil),
        ]
        for attempt in attempts {
            let result = try fixture.ssh(attempt.command, as: alice, input: attempt.input)
            #expect(result.status != 0, "\(attempt.command) was not refused: \(result.output)")
            #expect(result.stderr.hasPrefix("gust: "), "\(attempt.command): \(result.output)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(attempt.command): \(result.stderr)")
            #expect(result.stdout.isEmpty)
        }
        #expect(!FileManager.default.fileExists(atPath: marker.path))
        #expect(!FileManager.default.fileExists(atPath: fixture.home.repos.appendingPathComponent("x.git").path))
        let refusals = fixture.sshLog.split(separator: "\n").filter { $0.contains(" refused key=\"alice\"") }
        #expect(refusals.count == attempts.count, "\(fixture.sshLog)")
    }

    @Test(.scratchDirectory) func noCommandOrHelpSaysWhatThisKeyMayDo() throws {
        let fixture = try SSHFixture()
        #expect(try fixture.gust(["apps", "create", "cats"]).status == 0)
        let alice = try fixture.keyPair("alice"), bob = try fixture.keyPair("bob")
        try fixture.addKey("alice", alice, ["--admin"])
        try fixture.addKey("bob", bob, ["--app", "cats"])

        let empty = try fixture.ssh(nil, as: bob)
        #expect(empty.status == 0, "\(empty.output)")
        #expect(empty.stdout.contains("key 'bob', which may use cats"))
        #expect(empty.stdout.contains("ssh://\(SSHServer.user)@127.0.0.1:\(fixture.server.port)/cats.git"))
        #expect(!empty.stdout.contains("keys list"))

        let help = try fixture.ssh("help", as: alice)
        #expect(help.status == 0)
        #expect(help.stdout.contains("key 'alice', which may use every app"))
        #expect(help.stdout.contains("keys list"))

        // A command's own --help is printed, a usage error refused; neither runs anything.
        let releasesHelp = try fixture.ssh("releases show --help", as: bob)
        #expect(releasesHelp.status == 0, "\(releasesHelp.output)")
        #expect(releasesHelp.stdout.contains("USAGE: gust releases show"))
        let usage = try fixture.ssh("releases show cats v1 extra", as: bob)
        #expect(usage.status != 0)
        #expect(fixture.sshLog.contains("accepted key=\"bob\" from=127.0.0.1 command=\"releases show --help\"\n"), "\(fixture.sshLog)")
        #expect(fixture.sshLog.contains("refused key=\"bob\" from=127.0.0.1 command=\"releases show cats v1 extra\" reason=\"does not parse\""))
    }

    @Test(.scratchDirectory) func aScopedKeyRunsItsAppsCommandsButNotAdminOnes() throws {
        let fixture = try SSHFixture()
        for app in ["cats", "dogs"] { #expect(try fixture.gust(["apps", "create", app]).status == 0) }
        let bob = try fixture.keyPair("bob"), alice = try fixture.keyPair("alice")
        try fixture.addKey("bob", bob, ["--app", "cats"])
        try fixture.addKey("alice", alice, ["--admin"])

        let releases = try fixture.ssh("releases cats", as: bob)
        #expect(releases.status == 0, "\(releases.output)")
        #expect(releases.stdout.contains("cats has no releases yet"))
        let apps = try fixture.ssh("apps --json", as: bob)
        #expect(apps.status == 0)
        #expect(apps.stdout.contains("\"cats\"") && !apps.stdout.contains("\"dogs\""), "\(apps.stdout)")

        for command in ["keys list", "releases dogs", "apps create fish", "apps destroy cats --confirm cats", "config set dogs A=1"] {
            let refused = try fixture.ssh(command, as: bob)
            #expect(refused.status != 0, "\(command): \(refused.output)")
            #expect(refused.stderr.hasPrefix("gust: "), "\(command): \(refused.output)")
        }
        #expect(try fixture.appExists("cats") && !fixture.appExists("fish"))

        // An admin manages keys over SSH, the public key arriving on stdin.
        let carol = try fixture.keyPair("carol")
        let added = try fixture.ssh("keys add carol - --app dogs", as: alice, input: try String(contentsOf: carol.publicKey, encoding: .utf8))
        #expect(added.status == 0, "\(added.output)")
        #expect(try fixture.ssh("releases dogs", as: carol).status == 0)
        let listed = try fixture.ssh("keys list", as: alice)
        #expect(listed.stdout.contains("carol") && listed.stdout.contains("bob"))
    }

    /// `config set … --secret` is how a scoped key sets a secret (it has no `gust` on the server):
    /// its value is sealed in the store and never printed back, so the SSH log (a plain file,
    /// backed up and shipped as it is) shows names only, for a command accepted, refused or unread.
    @Test(.scratchDirectory) func aValueSetOverSSHNeverReachesTheSSHLog() throws {
        let fixture = try SSHFixture()
        for app in ["cats", "dogs"] { #expect(try fixture.gust(["apps", "create", app]).status == 0) }
        let bob = try fixture.keyPair("bob")
        try fixture.addKey("bob", bob, ["--app", "cats"])
        #expect(try fixture.ssh("config set cats API_KEY=hunter2-hunter2 --secret", as: bob).status == 0)
        #expect(try fixture.ssh("config set dogs API_KEY=other-secret-1 --secret", as: bob).status != 0)
        #expect(try fixture.ssh("config set cats SHORT=abcd --secret", as: bob).status != 0)
        #expect(try fixture.ssh("config set cats 'QUOTED=unclosed-secret", as: bob).status != 0)
        let log = fixture.sshLog
        #expect(log.contains("command=\"config set cats API_KEY=•••• --secret\""), "\(log)")
        for value in ["hunter2-hunter2", "other-secret-1", "abcd", "unclosed-secret"] {
            #expect(!log.contains(value), "\(value) in the SSH log: \(log)")
        }
        // C1 controls (U+009B is CSI to some terminals) and bidi overrides are written escaped.
        #expect(try fixture.ssh("releases cats\u{9B}31m\u{202E}x", as: bob).status != 0)
        #expect(!fixture.sshLog.unicodeScalars.contains { $0.value == 0x9B || $0.value == 0x202E }, "\(fixture.sshLog)")
        #expect(fixture.sshLog.contains("\\x9b31m\\u202ex"), "\(fixture.sshLog)")
    }

    /// sshd fixes a key's forced command when a connection logs in, and every later session on the
    /// connection (ssh's ControlMaster) runs that one. A command that named the key alone let a
    /// connection of a removed key act as the next key given its name: a scoped key's thief kept
    /// one open while the admin rotated the key, and became admin with the new `bob`.
    @Test(.scratchDirectory) func aConnectionOfARemovedKeyNeverActsAsTheNextKeyOfItsName() throws {
        let fixture = try SSHFixture()
        #expect(try fixture.gust(["apps", "create", "cats"]).status == 0)
        let old = try fixture.keyPair("bob-old"), new = try fixture.keyPair("bob-new")
        try fixture.addKey("bob", old, ["--app", "cats"])
        let control = fixture.root.appendingPathComponent("control").path
        let server = fixture.server
        let options = SSHServer.clientOptions(key: old.privateKey) + ["-p", String(server.port), "-o", "ControlPath=\(control)"]
        let target = "\(server.login)@127.0.0.1"
        let master = try Command.run("ssh", options + ["-o", "ControlMaster=yes", "-o", "ControlPersist=60", "-N", "-f", target], timeout: 60)
        try #require(master.status == 0, "\(master.output)")
        defer {
            // Stopped by its PID, which `-O check` names.
            let check = (try? Command.run("ssh", options + ["-O", "check", target], timeout: 10))?.output ?? ""
            if let range = check.range(of: "pid="), let pid = Int32(check[range.upperBound...].prefix { $0.isNumber }) { kill(pid, SIGKILL) }
        }
        func session(_ command: String) throws -> CommandResult {
            try Command.run("ssh", options + ["-o", "ControlMaster=no", "-T", target, command], input: "", timeout: 60)
        }
        let before = try session("help")
        #expect(before.status == 0 && before.stdout.contains("key 'bob'"), "\(before.output)")

        #expect(try fixture.gust(["keys", "remove", "bob"]).status == 0)
        try fixture.addKey("bob", new, ["--admin"])
        let listed = try session("keys list")
        #expect(listed.status != 0, "the old key's connection acted as the new bob: \(listed.output)")
        #expect(listed.stderr.hasPrefix("gust: "), "\(listed.output)")
        #expect(!listed.stdout.contains("bob-new") && !listed.stdout.contains("SHA256:"), "\(listed.output)")
        // The new key itself is bob, on a connection of its own.
        #expect(try fixture.ssh("keys list", as: new).status == 0)
    }

    /// Lines an earlier Gust wrote name the key alone: the first session through one still runs,
    /// and writes the file again with every key's fingerprint, for the connections after it.
    @Test(.scratchDirectory) func aLineWithoutItsFingerprintIsWrittenAgainWithIt() throws {
        let fixture = try SSHFixture()
        let bob = try fixture.keyPair("bob")
        try fixture.addKey("bob", bob, ["--admin"])
        let file = fixture.home.authorizedKeys
        let written = try String(contentsOf: file, encoding: .utf8)
        let fingerprint = try bob.fingerprint()
        #expect(written.contains(" --fingerprint \(fingerprint)\""))
        try written.replacingOccurrences(of: " --fingerprint \(fingerprint)", with: "").write(to: file, atomically: true, encoding: .utf8)
        #expect(try fixture.ssh("help", as: bob).status == 0)
        #expect(try String(contentsOf: file, encoding: .utf8) == written)
    }

    @Test(.scratchDirectory) func keysListPrintsTheFingerprintSSHKeygenPrints() throws {
        let fixture = try SSHFixture()
        let pairs = [try fixture.keyPair("ed"), try fixture.keyPair("ec", type: "ecdsa", bits: 521), try fixture.keyPair("rsa", type: "rsa", bits: 3072)]
        for pair in pairs { try fixture.addKey(pair.privateKey.lastPathComponent, pair, ["--admin"]) }
        let json = try fixture.gust(["keys", "list", "--json"]).stdout
        let listed = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
        for pair in pairs {
            let entry = listed.first { $0["name"] as? String == pair.privateKey.lastPathComponent }
            #expect(entry?["fingerprint"] as? String == (try pair.fingerprint()))
            // And sshd lets each one in.
            #expect(try fixture.ssh("apps", as: pair).status == 0)
        }
        let table = try fixture.gust(["keys", "list"]).stdout
        #expect(table.contains(try pairs[0].fingerprint()))
    }

    /// Destroying an app and changing the keys are in the activity log, by whoever did them:
    /// the local user, or the admin key over SSH.
    @Test(.scratchDirectory) func keyChangesAndDestroyedAppsAreInTheActivityLog() throws {
        let fixture = try SSHFixture()
        let alice = try fixture.keyPair("alice"), bob = try fixture.keyPair("bob")
        try fixture.addKey("alice", alice, ["--admin"])
        let bobKey = try String(contentsOf: bob.publicKey, encoding: .utf8)
        let added = try fixture.ssh("keys add bob", as: alice, input: bobKey)
        #expect(added.status == 0, "\(added.output)")
        #expect(try fixture.ssh("apps create dogs", as: alice).status == 0)
        #expect(try fixture.ssh("keys grant bob dogs", as: alice).status == 0)
        #expect(try fixture.ssh("keys remove bob", as: alice).status == 0)
        let destroyed = try fixture.ssh("apps destroy dogs --confirm dogs", as: alice)
        #expect(destroyed.status == 0, "\(destroyed.output)")
        #expect(try fixture.gust(["keys", "remove", "alice"]).status == 0)

        let entries = try Store(home: fixture.home).activity(limit: 20).reversed().map { "\($0.source) \($0.actor) \($0.action) \($0.app?.rawValue ?? "-")" }
        let local = entries.filter { $0.hasPrefix("cli ") }, remote = entries.filter { $0.hasPrefix("ssh ") }
        #expect(local.count == 2 && local.first?.hasSuffix(" key add -") == true && local.last?.hasSuffix(" key remove -") == true, "\(entries)")
        #expect(remote == ["ssh key alice key add -", "ssh key alice key grant -", "ssh key alice key remove -", "ssh key alice destroy dogs"], "\(entries)")
    }

    /// The SSH log is named as no app can be: it was `logs/ssh.log`, an app named `ssh`'s own log,
    /// which that app's output filled and its rotation erased.
    @Test(.scratchDirectory) func theSSHLogIsNoAppsLog() throws {
        let fixture = try SSHFixture()
        let alice = try fixture.keyPair("alice")
        try fixture.addKey("alice", alice, ["--admin"])
        #expect(try fixture.gust(["apps", "create", "ssh"]).status == 0)
        #expect(try fixture.ssh("apps", as: alice).status == 0)
        #expect(fixture.sshLog.contains("accepted key=\"alice\""), "\(fixture.sshLog)")
        let appLog = AppLog(home: fixture.home, app: try AppName("ssh")).current
        let written = (try? String(contentsOf: appLog, encoding: .utf8)) ?? ""
        #expect(!written.contains("accepted key="), "\(appLog.path): \(written)")
    }
}
