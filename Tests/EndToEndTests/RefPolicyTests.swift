import Foundation
import GustCore
import GustTesting
import Testing

/// Refs Gust owns or that would break every clone are refused before anything
/// is built or stored: release tags `vN`, and branches named like full refs.
@Suite(.timeLimit(.minutes(20)))
struct RefPolicyTests {
    /// What the bare repository holds: `refname objectname` lines.
    func refs(_ fixture: PushFixture) throws -> String {
        try Command.run("git", ["--git-dir", fixture.remote, "for-each-ref", "--format=%(refname) %(objectname)"]).stdout
    }

    func expectRefused(_ fixture: PushFixture, _ work: GitWorkspace, _ refspecs: [String], _ message: String) throws {
        let before = try refs(fixture)
        let push = try Command.run("git", ["push", fixture.remote] + refspecs, in: work.directory, environment: GitWorkspace.environment)
        #expect(push.status != 0, "push should have been refused: \(push.output)")
        #expect(push.stderr.contains(message), "\(push.stderr)")
        #expect(push.stderr.contains("pre-receive hook declined"))
        #expect(try refs(fixture) == before, "nothing stored in the repository")
        #expect(try fixture.releases().count == 1, "no release recorded")
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.home.tmp.path).isEmpty)
    }

    /// v1 deployed from `main`; returns the working copy.
    func deployed(_ fixture: PushFixture) throws -> GitWorkspace {
        let work = try fixture.workspace("py", copying: PushFixture.example("python-cats"))
        try work.commit("Cats")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
        return work
    }

    @Test(.scratchDirectory) func aTagNamedLikeAReleaseIsRefused() throws {
        let fixture = try PushFixture()
        let work = try deployed(fixture)
        try work.write("later.txt", "later\n")
        try work.commit("Later")
        try work.git("tag", "v2")
        try expectRefused(fixture, work, ["refs/tags/v2"], "The tag v2 is refused")
        // Also beside a deploy: the whole push is refused, nothing is built.
        try expectRefused(fixture, work, ["main", "refs/tags/v2"], "The tag v2 is refused")
        // Moving the tag of a release Gust made is refused too.
        try work.git("tag", "-f", "v1")
        try expectRefused(fixture, work, ["+refs/tags/v1"], "The tag v1 is refused")
        // Other tags are the developer's own.
        try work.git("tag", "v2-beta")
        #expect(try work.push(to: fixture.remote, "refs/tags/v2-beta").status == 0)
    }

    @Test(.scratchDirectory) func aBranchNamedLikeAFullRefIsRefused() throws {
        let fixture = try PushFixture()
        let work = try deployed(fixture)
        try work.write("later.txt", "later\n")
        try work.commit("Later")
        try expectRefused(fixture, work, ["HEAD:refs/heads/refs/heads/main"], "The branch name 'refs/heads/main' is refused")
        try expectRefused(fixture, work, ["HEAD:refs/heads/refs/tags/x"], "The branch name 'refs/tags/x' is refused")
        // A plain push of main still works afterwards.
        #expect(try work.push(to: fixture.remote).status == 0)
    }
}
