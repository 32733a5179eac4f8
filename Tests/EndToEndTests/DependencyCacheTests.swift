import Foundation
import GustCore
import GustTesting
import Testing

/// An unchanged requirements.txt costs next to nothing on the next push.
/// Installs one small package from PyPI, which the build machines reach.
@Suite(.timeLimit(.minutes(20)))
struct DependencyCacheTests {
    @Test(.scratchDirectory) func unchangedRequirementsAreNotReinstalled() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("deps", copying: PushFixture.example("python-cats"))
        try work.write("requirements.txt", "six==1.16.0\n")
        try work.commit("With six")
        let first = try work.push(to: fixture.remote)
        #expect(first.status == 0, "\(first.output)")
        #expect(first.stderr.contains("Installing requirements"))

        try work.write("README.md", "code change only\n")
        try work.commit("Code only")
        let second = try work.push(to: fixture.remote)
        #expect(second.status == 0, "\(second.output)")
        #expect(second.stderr.contains("Requirements unchanged"), "\(second.stderr)")
        #expect(!second.stderr.contains("Installing requirements"))
        #expect(!second.stderr.contains("Collecting six"))
    }
}
