import Foundation
import GustCore
import GustTesting
import Testing

/// A corrupt artifact is refused with a clear error and never takes gustd, or
/// any other app, down (issue 10, item 5).
@Suite(.timeLimit(.minutes(20)))
struct HardeningArtifactTests {
    static func app(_ version: String) -> String {
        """
        import gust

        @gust.handler('version', methods=['GET'])
        def version(request):
            return '\(version)\\n'

        """
    }

    /// Flips 64 bytes in the middle of the artifact of `version`; returns its file name.
    @discardableResult
    static func corruptArtifact(of version: Int, in fixture: PushFixture) throws -> String {
        let release = try #require(try fixture.store().release(try AppName(fixture.app), version: version))
        let digest = try #require(release.artifact)
        let file = fixture.home.artifacts.appendingPathComponent("\(digest).tar.zst")
        var bytes = try Data(contentsOf: file)
        let start = bytes.count / 2
        for index in start..<min(start + 64, bytes.count) { bytes[index] ^= 0xA5 }
        try bytes.write(to: file)
        return file.lastPathComponent
    }

    @Test(.scratchDirectory) func aCorruptArtifactFailsTheRollbackAndTheLiveReleaseKeepsServing() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        for version in ["one", "two", "three"] {
            try work.write("__init__.py", Self.app(version))
            try work.commit(version)
            let push = try work.push(to: fixture.remote)
            #expect(push.status == 0, "\(push.output)")
        }
        // Only v3 and v2 stay unpacked: a rollback to v1 unpacks its artifact.
        let name = try Self.corruptArtifact(of: 1, in: fixture)

        let rollback = try GustBinaries.gust(fixture.home, ["rollback", "cats", "v1"])
        #expect(rollback.status != 0)
        #expect(rollback.stderr.contains("corrupt"), "\(rollback.output)")
        #expect(rollback.stderr.contains(name), "the error names the artifact: \(rollback.output)")
        #expect(rollback.stderr.contains("v1"), "and the release: \(rollback.output)")
        let gustd = try #require(fixture.gustd)
        #expect(GustdProcess.isAlive(gustd.pid), "gustd survived:\n\(gustd.logText)")
        #expect(try fixture.call("GET", "/version").text == "three\n")
        #expect(try fixture.call("GET", "/_/health").json?["release"] as? String == "v3")
    }

    @Test(.scratchDirectory) func gustdStartsWithABrokenAppAndServesTheOthers() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app("cats"))
        try work.commit("Cats")
        #expect(try work.push(to: fixture.remote).status == 0)
        #expect(try GustBinaries.gust(fixture.home, ["apps", "create", "dogs"]).status == 0)
        let dogs = try fixture.workspace("dogs")
        try dogs.write("__init__.py", Self.app("dogs"))
        try dogs.commit("Dogs")
        #expect(try dogs.push(to: fixture.home.repository(try AppName("dogs")).path).status == 0)

        let gustd = try #require(fixture.gustd)
        gustd.stop()
        try FileManager.default.removeItem(at: fixture.home.release(try AppName("cats"), version: 1))
        let name = try Self.corruptArtifact(of: 1, in: fixture)
        try gustd.start()

        #expect(try HTTPClient.request(port: gustd.port, "GET", "/apps/dogs/version").text == "dogs\n")
        let broken = try fixture.call("GET", "/version")
        #expect(broken.status == 503, "\(broken.text)")
        #expect(broken.json?["code"] as? Int == 503)
        let message = broken.json?["error"] as? String ?? ""
        #expect(message.contains("corrupt") && message.contains(name), "\(broken.text)")
        #expect(GustdProcess.isAlive(gustd.pid), "gustd survived:\n\(gustd.logText)")
        #expect(try HTTPClient.request(port: gustd.port, "GET", "/apps/dogs/version").text == "dogs\n")
    }
}
