import Foundation
import Glibc
import GustCore
import GustTesting
import Testing

/// `gust backup` and `gust restore`: two pushed apps (one with records),
/// backed up while gustd serves, restored into a new home, served again by a
/// new gustd at their releases; the restored home takes pushes; pruning keeps
/// what serves and what rollback needs.
@Suite(.timeLimit(.minutes(20)))
struct BackupRestoreTests {
    static func app(_ label: String) -> String {
        """
        import gust

        @gust.op('who')
        def who():
            return '\(label)'

        """
    }

    @Test(.scratchDirectory) func aRestoredHomeServesEveryAppAtItsRelease() throws {
        let fixture = try PushFixture()
        #expect(try GustBinaries.gust(fixture.home, ["apps", "create", "dogs"]).status == 0)
        let cats = try fixture.workspace("cats")
        try cats.write("__init__.py", Self.app("cats v1"))
        try cats.commit("v1")
        #expect(try cats.push(to: fixture.remote).status == 0)
        try cats.write("__init__.py", Self.app("cats v2"))
        try cats.commit("v2")
        #expect(try cats.push(to: fixture.remote).status == 0)
        let dogs = try fixture.workspace("dogs")
        try dogs.write("__init__.py", Self.app("dogs v1"))
        try dogs.commit("v1")
        #expect(try dogs.push(to: fixture.home.repository(try AppName("dogs")).path).status == 0)
        let token = try GustBinaries.gust(fixture.home, ["tokens", "create", "cats"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try fixture.call("POST", "/_/records/cat", body: #"{"name": "Tom"}"#, headers: ["X-Auth-Token": token]).status == 201)

        let backup = fixture.root.appendingPathComponent("backup")
        let backedUp = try GustBinaries.gust(fixture.home, ["backup", backup.path])
        #expect(backedUp.status == 0, "\(backedUp.output)")
        #expect(backedUp.stdout.contains("cats v2, dogs v1"), "\(backedUp.stdout)")
        #expect(try GustBinaries.gust(fixture.home, ["backup", backup.path]).status != 0, "a backup never overwrites one")
        fixture.gustd?.stop()

        let restored = GustHome(path: fixture.root.appendingPathComponent("restored").path)
        let restore = try GustBinaries.gust(restored, ["restore", backup.path])
        #expect(restore.status == 0, "\(restore.output)")
        #expect(try GustBinaries.gust(restored, ["restore", backup.path]).status != 0, "a home with a store is refused")
        // Nothing of the old home is named in the new one's hooks.
        let hook = try String(contentsOf: restored.repository(try AppName("cats")).appendingPathComponent("hooks/pre-receive"), encoding: .utf8)
        #expect(hook.contains(restored.path) && !hook.contains(fixture.home.path), "\(hook)")

        let gustd = try GustdProcess(home: restored)
        defer { gustd.stop() }
        let catsAnswer = try HTTPClient.request(port: gustd.port, "POST", "/apps/cats/_/functions/who", body: "{}")
        #expect(catsAnswer.status == 200 && catsAnswer.text.contains("cats v2"), "\(catsAnswer.text)\n\(gustd.logText)")
        let dogsAnswer = try HTTPClient.request(port: gustd.port, "POST", "/apps/dogs/_/functions/who", body: "{}")
        #expect(dogsAnswer.status == 200 && dogsAnswer.text.contains("dogs v1"), "\(dogsAnswer.text)")
        let records = try HTTPClient.request(port: gustd.port, "GET", "/apps/cats/_/records/cat", headers: ["X-Auth-Token": token])
        #expect(records.status == 200 && records.text.contains("Tom"), "the records and the token came back: \(records.text)")

        // The restored home takes the next push, and rollback finds v1's artifact.
        try cats.write("__init__.py", Self.app("cats v3"))
        try cats.commit("v3")
        let push = try cats.push(to: restored.repository(try AppName("cats")).path)
        #expect(push.status == 0, "\(push.output)")
        #expect(try HTTPClient.request(port: gustd.port, "POST", "/apps/cats/_/functions/who", body: "{}").text.contains("cats v3"))

        // Prune keeping none: v3 (live) and v2 (the rollback target) keep their artifacts, v1 loses its own.
        let pruned = try GustBinaries.gust(restored, ["releases", "prune", "cats", "--keep", "0"])
        #expect(pruned.status == 0, "\(pruned.output)")
        #expect(pruned.stdout.contains("kept v3, v2"), "\(pruned.stdout)")
        let listing = try GustBinaries.gust(restored, ["releases", "cats"]).stdout
        #expect(listing.contains("built, pruned"), "\(listing)")
        let refused = try GustBinaries.gust(restored, ["rollback", "cats", "v1"])
        #expect(refused.status != 0 && refused.output.contains("was pruned"), "\(refused.output)")
        let rollback = try GustBinaries.gust(restored, ["rollback", "cats"])
        #expect(rollback.status == 0, "\(rollback.output)")
        #expect(try HTTPClient.request(port: gustd.port, "POST", "/apps/cats/_/functions/who", body: "{}").text.contains("cats v2"))
    }

    /// A backup leaves stacks out (hundreds of MB that `gust stacks build` makes again). The restored
    /// home names the stacks its releases need and the build that makes each, under the same name and
    /// version; gustd's start and `gust releases export` say so too; once it is built, the release runs.
    /// The home is the `gust` user's, and a backup often runs as root: what that user plants in it
    /// is copied as what it is, never followed. A link to a directory outside (`/etc`, `/root`) is
    /// kept a link (it was copied through, and a restore handed the contents to the `gust` user); a
    /// FIFO is left out and named (it hung every backup); no setuid bit is kept. And a backup
    /// directory someone else could write in, made beforehand, is refused.
    @Test(.scratchDirectory) func aBackupCopiesLinksAsLinksAndLeavesOutWhatIsNotAFile() throws {
        let home = GustHome(path: ScratchDirectory.current.appendingPathComponent("home").path)
        #expect(try GustBinaries.gust(home, ["apps", "create", "cats"]).status == 0)
        let outside = ScratchDirectory.current.appendingPathComponent("outside")  // think /root
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        try Data("root's secret".utf8).write(to: outside.appendingPathComponent("secret.txt"))
        let planted = home.root.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: planted, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: planted.appendingPathComponent("escape"), withDestinationURL: outside)
        #expect(mkfifo(planted.appendingPathComponent("pipe").path, 0o644) == 0)
        #expect(FileManager.default.createFile(atPath: planted.appendingPathComponent("tool").path, contents: Data("x".utf8), attributes: [.posixPermissions: 0o4755]))

        // A directory made beforehand that others may write in, or a link, is refused.
        let open = ScratchDirectory.current.appendingPathComponent("open")
        try FileManager.default.createDirectory(at: open, withIntermediateDirectories: true)
        chmod(open.path, 0o777)
        let linked = ScratchDirectory.current.appendingPathComponent("linked")
        try FileManager.default.createSymbolicLink(at: linked, withDestinationURL: open)
        for refused in [open, linked] {
            let result = try Command.run(GustBinaries.gust, ["backup", refused.path, "--home", home.path], timeout: 60)
            #expect(result.status != 0 && result.output.contains("is not a private directory"), "\(result.output)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: open.path).isEmpty)

        let backup = ScratchDirectory.current.appendingPathComponent("backup")
        let backedUp = try Command.run(GustBinaries.gust, ["backup", backup.path, "--home", home.path], timeout: 60)
        #expect(backedUp.status == 0, "\(backedUp.output)")
        #expect(backedUp.output.contains("logs/pipe") && backedUp.output.contains("not a file, directory or link"), "\(backedUp.output)")
        let escape = backup.appendingPathComponent("logs/escape").path
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: escape)) == outside.path, "kept a link")
        let copied = FileManager.default.enumerator(atPath: backup.path)?.allObjects as? [String] ?? []
        #expect(!copied.contains { $0.hasSuffix("secret.txt") }, "\(copied)")
        #expect(!FileManager.default.fileExists(atPath: backup.appendingPathComponent("logs/pipe").path))
        let mode = (try FileManager.default.attributesOfItem(atPath: backup.appendingPathComponent("logs/tool").path)[.posixPermissions] as? Int) ?? 0
        #expect(mode == 0o755, "mode \(String(mode, radix: 8))")
    }

    /// A restore is staged: one stopped half-way (here by a record store in the backup that is
    /// not a database) leaves no store, gustd will not start on what it left, and the same
    /// restore, run again once the backup is mended, takes up where it stopped. A backup others
    /// could have written in is not restored at all.
    @Test(.scratchDirectory) func aRestoreStoppedHalfWayIsTakenUpByTheNextAndGustdWaitsForIt() throws {
        let fm = FileManager.default
        let scratch = ScratchDirectory.current
        let home = GustHome(path: scratch.appendingPathComponent("home").path)
        #expect(try GustBinaries.gust(home, ["apps", "create", "cats"]).status == 0)
        _ = try RecordStore(home: home, app: try AppName("cats")).insert("cat", ["name": .string("Tom")])
        let backup = scratch.appendingPathComponent("backup")
        #expect(try GustBinaries.gust(home, ["backup", backup.path]).status == 0)
        let target = GustHome(path: scratch.appendingPathComponent("restored").path)
        func restore() throws -> CommandResult {
            try Command.run(GustBinaries.gust, ["restore", backup.path, "--home", target.path], timeout: 60)
        }

        chmod(backup.path, 0o777)
        let refused = try restore()
        #expect(refused.status != 0 && refused.output.contains("is not a backup only this user could have written"), "\(refused.output)")
        #expect(!fm.fileExists(atPath: target.database.path))
        chmod(backup.path, 0o700)

        let records = backup.appendingPathComponent("data/cats/records.sqlite")
        let good = scratch.appendingPathComponent("records.good")
        try fm.moveItem(at: records, to: good)
        try Data("not a database".utf8).write(to: records)
        let stopped = try restore()
        #expect(stopped.status != 0, "\(stopped.output)")
        #expect(!fm.fileExists(atPath: target.database.path), "the store goes in last")
        #expect(fm.fileExists(atPath: target.restoreUnfinished.path))
        do {
            let gustd = try GustdProcess(home: target)
            gustd.stop()
            Issue.record("gustd started on a half-restored home")
        } catch let failure as GustdFailure {
            #expect(failure.log.contains("did not finish"), "\(failure.log)")
        }

        try fm.removeItem(at: records)
        try fm.moveItem(at: good, to: records)
        let again = try restore()
        #expect(again.status == 0, "\(again.output)")
        #expect(again.output.contains("did not finish; this one replaces what it left"), "\(again.output)")
        #expect(!fm.fileExists(atPath: target.restoreUnfinished.path))
        #expect(try RecordStore(home: target, app: try AppName("cats")).find("cat", .init()).map { $0["name"] } == [.string("Tom")])
        let twice = try restore()
        #expect(twice.status != 0 && twice.output.contains("already has a store"), "\(twice.output)")
    }

    @Test(.scratchDirectory) func aRestoredHomeNamesTheStacksItsReleasesNeedAndRunsOnceTheyAreBuilt() throws {
        let fixture = try PushFixture()
        _ = try StackCache.install(["bookworm"], into: fixture.home)
        let cats = try fixture.workspace("cats")
        try cats.write("__init__.py", Self.app("cats on a stack"))
        try cats.commit("v1")
        #expect(try cats.push(to: fixture.remote).status == 0)
        #expect(try fixture.store().release(try AppName("cats"), version: 1)?.stack == "bookworm@1")
        let backup = fixture.root.appendingPathComponent("backup")
        #expect(try GustBinaries.gust(fixture.home, ["backup", backup.path]).status == 0)
        fixture.gustd?.stop()
        #expect(!FileManager.default.fileExists(atPath: backup.appendingPathComponent("stacks").path))

        let restored = GustHome(path: fixture.root.appendingPathComponent("restored").path)
        let restore = try GustBinaries.gust(restored, ["restore", backup.path])
        #expect(restore.status == 0, "\(restore.output)")
        let build = "gust stacks build bookworm --version 1"
        #expect(restore.stdout.contains("bookworm@1 (cats v1): \(build) --home \(restored.path)"), "\(restore.stdout)")

        // Without it: gustd's start names it, the release cannot start, and an export names the build.
        let without = try GustdProcess(home: restored)
        let refused = try HTTPClient.request(port: without.port, "POST", "/apps/cats/_/functions/who", body: "{}")
        #expect(refused.status != 200, "\(refused.text)")
        without.stop()
        #expect(without.logText.contains("Stack bookworm@1 is not in this home") && without.logText.contains(build), "\(without.logText)")
        let exported = try GustBinaries.gust(restored, ["releases", "export", "cats", "v1", "--oci", fixture.root.appendingPathComponent("oci").path])
        #expect(exported.status != 0 && exported.output.contains("stack bookworm@1") && exported.output.contains(build), "\(exported.output)")

        // Built again (here: the tests' build of the same suite, as `gust stacks build bookworm --version 1` makes it):
        // the name and version are what the release asks for, so it runs; that version is never built twice.
        _ = try StackCache.install(["bookworm"], into: restored)
        let twice = try GustBinaries.gust(restored, ["stacks", "build", "bookworm", "--version", "1"])
        #expect(twice.status != 0 && twice.output.contains("bookworm@1 is already in this home"), "\(twice.output)")
        let gustd = try GustdProcess(home: restored)
        defer { gustd.stop() }
        let answer = try HTTPClient.request(port: gustd.port, "POST", "/apps/cats/_/functions/who", body: "{}")
        #expect(answer.status == 200 && answer.text.contains("cats on a stack"), "\(answer.text)\n\(gustd.logText)")
        #expect(!gustd.logText.contains("is not in this home"), "\(gustd.logText)")
    }

    @Test(.scratchDirectory) func gustdKeepReleasesPrunesAfterEachDeploy() throws {
        let fixture = try PushFixture(gustdArguments: ["--keep-releases", "0"])
        let cats = try fixture.workspace("cats")
        for version in 1...3 {
            try cats.write("__init__.py", Self.app("cats v\(version)"))
            try cats.commit("v\(version)")
            let push = try cats.push(to: fixture.remote)
            #expect(push.status == 0, "\(push.output)")
            if version == 3 { #expect(push.stderr.contains("of old artifacts (--keep-releases 0)"), "\(push.stderr)") }
        }
        // v3 is live and v2 is what rollback goes back to: only v1's artifact went.
        let artifacts = try FileManager.default.contentsOfDirectory(atPath: fixture.home.artifacts.path).filter { $0.hasSuffix(".tar.zst") }
        #expect(artifacts.count == 2, "\(artifacts)")
        let releases = try fixture.releases()
        #expect(releases.first { $0["version"] as? Int == 1 }?["pruned"] as? Bool == true, "\(releases)")
        #expect(releases.first { $0["version"] as? Int == 2 }?["pruned"] as? Bool == false)
        let rollback = try GustBinaries.gust(fixture.home, ["rollback", "cats"])
        #expect(rollback.status == 0, "\(rollback.output)")
        #expect(try fixture.call("POST", "/_/functions/who", body: "{}").text.contains("cats v2"))
    }
}
