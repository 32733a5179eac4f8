import Foundation
import GustCore
import GustTesting
import Testing

/// Every push Gust refuses says why and what to do, and nothing becomes live.
@Suite(.timeLimit(.minutes(20)))
struct PushRejectionTests {
    /// Pushes and expects git to reject it, with `message` in the remote output.
    func expectRejected(_ fixture: PushFixture, _ work: GitWorkspace, _ message: String, refspec: String = "main") throws {
        let push = try work.push(to: fixture.remote, refspec)
        #expect(push.status != 0, "push should have been rejected: \(push.output)")
        #expect(push.stderr.contains(message), "\(push.stderr)")
        #expect(push.stderr.contains("pre-receive hook declined"))
        #expect(try fixture.store().app(try AppName(fixture.app))?.liveVersion == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.home.tmp.path).isEmpty)
    }

    @Test(.scratchDirectory) func noBuildpackMatches() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("plain")
        try work.write("README.md", "just words\n")
        try work.commit("Words")
        try expectRejected(fixture, work, "No buildpack recognised this app")
        let releases = try fixture.releases()
        #expect(releases.first?["status"] as? String == "failed")
        let shown = try GustBinaries.gust(fixture.home, ["releases", "show", "cats", "v1"]).stdout
        #expect(shown.contains("requirements.txt") && shown.contains("package.json"))
    }

    /// A build's limits are gustd's (`--build-output-limit`, `--build-timeout`): the push's
    /// environment, which gust-receive runs with, no longer raises them.
    @Test(.scratchDirectory) func aBuildsOutputLimitIsGustdsAndThePushCannotRaiseIt() throws {
        let fixture = try PushFixture(gustdArguments: ["--build-output-limit", "40"])
        let work = try fixture.workspace("py", copying: PushFixture.example("python-cats"))
        try work.commit("Cats")
        let push = try work.push(to: fixture.remote, environment: ["GUST_BUILD_OUTPUT_LIMIT": "100000000"])
        #expect(push.status != 0, "\(push.output)")
        #expect(push.stderr.contains("The build printed more than its limit of 40 bytes of output and was stopped."), "\(push.stderr)")
        #expect(push.stderr.contains("gustd's --build-output-limit"), "\(push.stderr)")
        #expect(try fixture.store().app(try AppName(fixture.app))?.liveVersion == nil)
    }

    @Test(.scratchDirectory) func aBuildsTimeLimitIsGustdsAndThePushCannotRaiseIt() throws {
        let fixture = try PushFixture(gustdArguments: ["--build-timeout", "2"])
        let work = try fixture.workspace("slow")
        try work.write("__init__.py", "import gust\n\n@gust.op('meow')\ndef meow():\n    return 'meow'\n")
        try work.write("requirements.txt", "./slow\n")
        try work.write("slow/setup.py", "import time\ntime.sleep(120)\nfrom setuptools import setup\nsetup(name='slow', version='1.0', py_modules=[])\n")
        try work.commit("Slow")
        let push = try work.push(to: fixture.remote, environment: ["GUST_BUILD_TIMEOUT": "600"])
        #expect(push.status != 0, "\(push.output)")
        #expect(push.stderr.contains("The build took longer than its limit of 2 s and was stopped."), "\(push.stderr)")
        #expect(push.stderr.contains("gustd's --build-timeout"), "\(push.stderr)")
        #expect(try fixture.store().app(try AppName(fixture.app))?.liveVersion == nil)
    }

    @Test(.scratchDirectory) func failingPipInstall() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("pip", copying: PushFixture.example("python-cats"))
        try work.write("requirements.txt", "gust-no-such-package-anywhere==0.0.1\n")
        try work.commit("Broken requirement")
        try expectRejected(fixture, work, "failed to compile")
        #expect(try fixture.releases().first?["status"] as? String == "failed")
    }

    @Test(.scratchDirectory) func symlinkEscapingTheTree() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("link", copying: PushFixture.example("python-cats"))
        try FileManager.default.createSymbolicLink(
            atPath: work.directory.appendingPathComponent("passwd").path, withDestinationPath: "../../../../etc/passwd")
        try work.commit("Sneaky link")
        try expectRejected(fixture, work, "passwd")
    }

    @Test(.scratchDirectory) func submodule() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("sub", copying: PushFixture.example("python-cats"))
        try work.git("add", "-A")
        try work.git("update-index", "--add", "--cacheinfo", "160000,\(String(repeating: "a", count: 40)),vendor/lib")
        try work.git("commit", "-q", "-m", "Submodule")
        try expectRejected(fixture, work, "vendor/lib")
    }

    @Test(.scratchDirectory) func deletingTheDeployBranch() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("del", copying: PushFixture.example("python-cats"))
        try work.commit("Cats")
        #expect(try work.push(to: fixture.remote).status == 0)
        let push = try work.push(to: fixture.remote, ":main")
        #expect(push.status != 0)
        #expect(push.stderr.contains("Deleting main is refused"), "\(push.stderr)")
        #expect(try Command.run("git", ["--git-dir", fixture.remote, "rev-parse", "main"]).status == 0)
    }

    @Test(.scratchDirectory, arguments: ["Cats", "1cats", "cats_food", "../etc"])
    func invalidAppNameIsRefusedWithTheRule(_ name: String) throws {
        let home = GustHome(path: ScratchDirectory.current.appendingPathComponent("home").path)
        let result = try GustBinaries.gust(home, ["apps", "create", name])
        #expect(result.status != 0)
        #expect(result.stderr.contains("starts with a lower-case letter"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: home.repos.appendingPathComponent("\(name).git").path))
    }
}
