import Foundation
import GustCore
import GustTesting
import Testing

/// `gust apps`: each app with what is live and how it scales (issue 11: the scale settings are
/// shown by `gust apps` as by `gust scale APP`).
/// The limit of every end-to-end suite: it guards against a hang, and a suite may wait minutes for
/// one of the two cooperative threads the other suites hold with their real processes.
@Suite(.timeLimit(.minutes(20)))
struct AppsListTests {
    @Test(.scratchDirectory) func theListShowsEachAppsScale() throws {
        let fixture = try PushFixture(startGustd: false)
        #expect(try GustBinaries.gust(fixture.home, ["apps", "create", "dogs"]).status == 0)
        #expect(try GustBinaries.gust(fixture.home, ["scale", "cats", "--min", "0", "--max", "3", "--idle", "90s"]).status == 0)

        let table = try GustBinaries.gust(fixture.home, ["apps"])
        #expect(table.status == 0, "\(table.output)")
        let lines = table.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        #expect(lines.first?.contains("SCALE") == true && lines.first?.contains("IDLE") == true, "\(table.stdout)")
        let cats = try #require(lines.first { $0.first == "cats" }, "\(table.stdout)")
        #expect(cats.contains("0-3") && cats.contains("1m30s"), "\(table.stdout)")
        let dogs = try #require(lines.first { $0.first == "dogs" }, "\(table.stdout)")
        let standard = ScaleSettings.standard
        #expect(dogs.contains("\(standard.min)-\(standard.max)") && dogs.contains(standard.idleText), "\(table.stdout)")

        let json = try GustBinaries.gust(fixture.home, ["apps", "--json"])
        let apps = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]], "\(json.output)")
        let listed = try #require(apps.first { $0["name"] as? String == "cats" })
        let scale = try #require(listed["scale"] as? [String: Any], "\(json.stdout)")
        #expect(scale["min"] as? Int == 0 && scale["max"] as? Int == 3 && scale["idleSeconds"] as? Int == 90, "\(json.stdout)")
        #expect(listed["liveVersion"] == nil || listed["liveVersion"] is NSNull, "the app's own fields stay: \(json.stdout)")
        #expect(listed["isPrivate"] as? Bool == false, "\(json.stdout)")
    }
}
