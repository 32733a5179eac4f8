import Foundation
import GustCore
import GustTesting
import Testing

/// A real `git push` into a repository made by `gust apps create` becomes a release.
@Suite(.timeLimit(.minutes(20)))
struct PushBuildTests {
    @Test(.scratchDirectory) func pythonAppBuildsAndASecondPushMakesV2() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py", copying: PushFixture.example("python-cats"))
        let first = try work.commit("First cats")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
        #expect(push.stderr.contains("remote: -----> Python app detected"))
        #expect(push.stderr.contains("remote: -----> Built v1"))

        try work.write("README.md", "more cats\n")
        try work.commit("More cats")
        let second = try work.push(to: fixture.remote)
        #expect(second.status == 0, "\(second.output)")
        #expect(second.stderr.contains("remote: -----> Built v2"))

        let releases = try fixture.releases()
        #expect(releases.compactMap { $0["version"] as? Int } == [2, 1])
        #expect(releases.last?["commit"] as? String == first)
        #expect(releases.allSatisfy { $0["buildpack"] as? String == "python" })
        let table = try GustBinaries.gust(fixture.home, ["releases", "cats"]).stdout
        #expect(table.contains("v2") && table.contains("v1") && table.contains(String(first.prefix(7))))

        // Each release is tagged in the app's repository once git has stored the push.
        let tags = try Command.run("git", ["--git-dir", fixture.remote, "tag"]).stdout.split(separator: "\n")
        #expect(tags.map(String.init).sorted() == ["v1", "v2"])
        // And every artifact is there, named by the SHA-256 of its bytes.
        for release in releases {
            let digest = try #require(release["artifact"] as? String)
            let file = fixture.home.artifacts.appendingPathComponent("\(digest).tar.zst")
            let sum = try Command.run("sha256sum", [file.path]).stdout.prefix(64)
            #expect(String(sum) == digest)
        }
    }

    /// A clone checks out HEAD: `main` for a new app, `master` for one deployed from it.
    @Test(.scratchDirectory) func aCloneChecksOutTheDeployedBranch() throws {
        let fixture = try PushFixture()
        let head = { try Command.run("git", ["--git-dir", fixture.remote, "symbolic-ref", "HEAD"]).stdout }
        #expect(try head() == "refs/heads/main\n")

        let work = try fixture.workspace("py", copying: PushFixture.example("python-cats"))
        let pushed = try work.commit("Cats")
        _ = try work.git("branch", "-m", "master")
        let push = try work.push(to: fixture.remote, "master")
        #expect(push.status == 0, "\(push.output)")
        #expect(try head() == "refs/heads/master\n")

        let clone = fixture.root.appendingPathComponent("clone")
        let cloned = try Command.run("git", ["clone", "-q", fixture.remote, clone.path], environment: GitWorkspace.environment)
        #expect(cloned.status == 0 && !cloned.output.contains("nonexistent ref"), "\(cloned.output)")
        #expect(try Command.run("git", ["-C", clone.path, "rev-parse", "HEAD"]).stdout == pushed + "\n")
    }

    @Test(.scratchDirectory) func nodeAppBuilds() throws {
        let fixture = try PushFixture(app: "reviews")
        let work = try fixture.workspace("node", copying: PushFixture.example("node-reviews"))
        try work.commit("Reviews")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
        #expect(push.stderr.contains("app detected"))
        #expect(push.stderr.contains("remote: -----> Built v1"))
        #expect(try fixture.releases().first?["buildpack"] as? String == "node")
    }

    /// The build writes files at a new time (the start script, the copied
    /// environment); the artifact must still depend only on what was built.
    @Test(.scratchDirectory) func theSameCommitBuiltTwiceSharesOneArtifact() throws {
        let fixture = try PushFixture()
        let twin = try GustBinaries.gust(fixture.home, ["apps", "create", "kittens"])
        #expect(twin.status == 0, "\(twin.output)")
        let work = try fixture.workspace("same", copying: PushFixture.example("python-cats"))
        try work.commit("Cats")
        #expect(try work.push(to: fixture.remote).status == 0)
        Thread.sleep(forTimeInterval: 1.1)  // so that anything stamped with the build time would differ
        let second = try work.push(to: fixture.home.repository(try AppName("kittens")).path)
        #expect(second.status == 0, "\(second.output)")

        let cats = try #require(try fixture.releases().first?["artifact"] as? String)
        let kittensJSON = try GustBinaries.gust(fixture.home, ["releases", "kittens", "--json"]).stdout
        let kittens = try #require((try JSONSerialization.jsonObject(with: Data(kittensJSON.utf8)) as? [[String: Any]])?.first?["artifact"] as? String)
        #expect(cats == kittens)
        let artifacts = try FileManager.default.contentsOfDirectory(atPath: fixture.home.artifacts.path)
        #expect(artifacts == ["\(cats).tar.zst"])
    }

    @Test(.scratchDirectory) func otherBranchesAreAcceptedWithoutABuild() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("branch", copying: PushFixture.example("python-cats"))
        try work.commit("Cats")
        let push = try work.push(to: fixture.remote, "main:feature")
        #expect(push.status == 0, "\(push.output)")
        #expect(push.stderr.contains("Accepted feature without building"))
        #expect(try fixture.releases().isEmpty)
    }

    @Test(.scratchDirectory) func twoPushesAtOnceGetDistinctVersionsAndIntactArtifacts() throws {
        let fixture = try PushFixture()
        let one = try fixture.workspace("one", copying: PushFixture.example("python-cats"))
        try one.commit("One")
        let two = try fixture.workspace("two", copying: PushFixture.example("python-cats"))
        try two.write("two.txt", "two\n")
        try two.commit("Two")
        // main and master are both deploy branches, so both pushes can land; the app lock serialises the builds.
        let results = ResultBox()
        let group = DispatchGroup()
        for (work, refspec) in [(one, "main:main"), (two, "main:master")] {
            group.enter()
            Thread.detachNewThread {
                results.append(try? work.push(to: fixture.remote, refspec))
                group.leave()
            }
        }
        #expect(group.wait(timeout: .now() + 300) == .success)
        #expect(results.all.count == 2)
        for result in results.all { #expect(result?.status == 0, "\(result?.output ?? "no result")") }
        let releases = try fixture.releases()
        #expect(Set(releases.compactMap { $0["version"] as? Int }) == [1, 2])
        // Both built; the one deployed last is live.
        #expect(releases.compactMap { $0["status"] as? String }.sorted() == ["built", "live"])
        #expect(Set(releases.compactMap { $0["artifact"] as? String }).count == 2)
        for digest in releases.compactMap({ $0["artifact"] as? String }) {
            let file = fixture.home.artifacts.appendingPathComponent("\(digest).tar.zst")
            #expect(try Command.run("zstd", ["-t", "-q", file.path]).status == 0)
        }
        // No build directory and no half-written artifact is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.home.tmp.path).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.home.artifacts.path).allSatisfy { $0.hasSuffix(".tar.zst") })
    }
}

final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [CommandResult?] = []
    func append(_ result: CommandResult?) { lock.withLock { results.append(result) } }
    var all: [CommandResult?] { lock.withLock { results } }
}
