import Foundation
import GustCore
import GustTesting
import Testing

/// An app's name is used again once the app is destroyed, and the next app under it is another
/// tenant's: it starts with nothing of the last one's.
@Suite(.timeLimit(.minutes(20)))
struct NameReuseTests {
    func token(_ fixture: PushFixture) throws -> String {
        let created = try GustBinaries.gust(fixture.home, ["tokens", "create", "cats"])
        #expect(created.status == 0, "\(created.output)")
        return created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Records: gustd kept the old store open (its file unlinked, SQLite in WAL mode went on
    /// reading it) and served it to the new app. Logs: `logs/APP.log` stayed. Activity: the app's
    /// list showed every entry of its name, the last tenant's config names and tokens among them.
    @Test(.scratchDirectory) func anAppMadeAgainUnderItsNameSeesNothingOfTheOldOnes() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try work.write("__init__.py", """
            import gust

            @gust.op('confide')
            def confide():
                print('the old tenant confides 4111 1111 1111 1111', flush=True)
                return 'ok'
            """)
        try work.commit("App")
        #expect(try work.push(to: fixture.remote).status == 0)
        #expect(try fixture.call("POST", "/_/functions/confide", body: "{}").status == 200)
        #expect(try GustBinaries.gust(fixture.home, ["config", "set", "cats", "OLD_TENANT_SECRET_NAME=x"]).status == 0)
        let first = try token(fixture)
        let written = try fixture.call("POST", "/_/records/cat", body: #"{"card": "4111 1111 1111 1111"}"#, headers: ["X-Auth-Token": first])
        let id = try #require(written.json?["_id"] as? String, "\(written.text)")
        #expect(try fixture.call("GET", "/_/records/cat/\(id)", headers: ["X-Auth-Token": first]).status == 200)
        #expect(try GustBinaries.gust(fixture.home, ["logs", "cats", "-n", "100"]).stdout.contains("the old tenant confides"))

        let destroyed = try GustBinaries.gust(fixture.home, ["apps", "destroy", "cats", "--confirm", "cats"])
        #expect(destroyed.status == 0, "\(destroyed.output)")
        #expect(try GustBinaries.gust(fixture.home, ["apps", "create", "cats"]).status == 0)
        let second = try token(fixture)

        let old = try fixture.call("GET", "/_/records/cat/\(id)", headers: ["X-Auth-Token": second])
        #expect(old.status == 404, "\(old.text)")
        let listed = try fixture.call("GET", "/_/records/cat", headers: ["X-Auth-Token": second])
        #expect(listed.status == 200 && (listed.json?["records"] as? [Any])?.isEmpty == true, "\(listed.text)")
        let fresh = try fixture.call("POST", "/_/records/cat", body: #"{"name": "Tom"}"#, headers: ["X-Auth-Token": second])
        #expect(fresh.status == 201 || fresh.status == 200, "\(fresh.text)")
        let file = fixture.home.data(try AppName("cats")).appendingPathComponent("records.sqlite").path
        #expect(try RecordStore(url: URL(fileURLWithPath: file)).get("cat", id: try #require(fresh.json?["_id"] as? String)) != nil,
                "the new app's write is in its own store, on disk")

        let logs = try GustBinaries.gust(fixture.home, ["logs", "cats", "-n", "100"])
        #expect(!logs.stdout.contains("the old tenant confides"), "\(logs.output)")
        let activity = try Store(home: fixture.home).activity(app: try AppName("cats"))
        #expect(!activity.contains { $0.detail.contains("OLD_TENANT_SECRET_NAME") || $0.action == "destroy" }, "\(activity)")
        let all = try Store(home: fixture.home).activity()
        #expect(all.contains { $0.detail.contains("OLD_TENANT_SECRET_NAME") }, "an admin's list of all keeps it: \(all)")
    }

    /// An app destroyed while a call of its runs: the instance was drained, not stopped, so it went
    /// on until its call ended (15 s, a hook up to 5 min), its writes making the name's records
    /// store anew and its output the name's log, and the next tenant of the name found both.
    @Test(.scratchDirectory) func anAppDestroyedDuringACallLeavesTheNextOneUnderItsNameNothing() throws {
        let fixture = try PushFixture()
        let push = try fixture.pushPython("""
            import time
            import gust

            @gust.op('linger')
            def linger():
                for n in range(100):
                    gust.records.save('planted', {'n': n})
                    print('the old tenant lingers', n, flush=True)
                    time.sleep(0.1)
                return 'done'
            """)
        try #require(push.status == 0, "\(push.output)")
        let port = fixture.port
        let lingering = Thread {
            _ = try? HTTPClient.request(port: port, "POST", "/apps/cats/_/functions/linger", body: "{}", timeout: 30)
        }
        lingering.start()
        let first = try token(fixture)
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let found = try fixture.call("GET", "/_/records/planted", headers: ["X-Auth-Token": first])
            if (found.json?["records"] as? [Any])?.isEmpty == false { break }
            usleep(50_000)
        }

        let destroyed = try GustBinaries.gust(fixture.home, ["apps", "destroy", "cats", "--confirm", "cats"])
        #expect(destroyed.status == 0, "\(destroyed.output)")
        #expect(try GustBinaries.gust(fixture.home, ["apps", "create", "cats"]).status == 0)
        let second = try token(fixture)
        usleep(1_500_000)  // fifteen more of the old call's writes and lines, had it gone on

        let listed = try fixture.call("GET", "/_/records/planted", headers: ["X-Auth-Token": second])
        #expect(listed.status == 200 && (listed.json?["records"] as? [Any])?.isEmpty == true, "\(listed.text)")
        let logs = try GustBinaries.gust(fixture.home, ["logs", "cats", "-n", "100"])
        #expect(!logs.stdout.contains("the old tenant lingers"), "\(logs.output)")
    }
}
