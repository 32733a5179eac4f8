import Foundation
import GustCore
import GustTesting
import Testing

/// Config vars and secrets, private apps with tokens, and following logs,
/// on a pushed app served by a real gustd.
@Suite(.timeLimit(.minutes(20)))
struct ConfigAndAccessTests {
    static let secret = "s3cr3t-7f1c9e"

    static let app = """
        import os
        import gust

        @gust.op('greeting')
        def greeting():
            return os.environ.get('GREETING', 'unset')

        @gust.op('has_key')
        def has_key():
            return os.environ.get('API_KEY') == '\(secret)'

        @gust.op('careless')
        def careless():
            print('calling the API with', os.environ.get('API_KEY'), flush=True)
            return 'ok'

        @gust.op('shout')
        def shout(text):
            print('SHOUT', text, flush=True)
            return text.upper()

        @gust.op('warn')
        def warn():
            import sys
            print('careful now', file=sys.stderr, flush=True)
            return 'warned'

        @gust.handler('/hello')
        def hello(request):
            return {'hello': 'world'}

        """

    func liveVersion(_ fixture: PushFixture) throws -> Int? {
        try fixture.releases().first { $0["status"] as? String == "live" }?["version"] as? Int
    }

    @Test(.scratchDirectory) func configChangesAreReleasesAndSecretsNeverShow() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app)
        try work.commit("Config")
        #expect(try work.push(to: fixture.remote).status == 0)
        #expect(try fixture.call("POST", "/_/functions/greeting").text == #""unset""#)

        let set = try GustBinaries.gust(fixture.home, ["config", "set", "cats", "GREETING=hello there"])
        #expect(set.status == 0, "\(set.output)")
        #expect(try liveVersion(fixture) == 2, "a config change is a new release, live when the command returns")
        #expect(try fixture.call("POST", "/_/functions/greeting").text == #""hello there""#)

        let secret = try GustBinaries.gust(fixture.home, ["config", "set", "cats", "API_KEY=\(Self.secret)", "--secret"])
        #expect(secret.status == 0, "\(secret.output)")
        #expect(!secret.output.contains(Self.secret))
        #expect(try liveVersion(fixture) == 3)
        #expect(try fixture.call("POST", "/_/functions/has_key").text == "true", "functions see the secret's value")
        #expect(try fixture.call("POST", "/_/functions/careless").status == 200)

        let shown = try GustBinaries.gust(fixture.home, ["config", "cats"])
        #expect(shown.stdout.contains("GREETING") && shown.stdout.contains("hello there"), "\(shown.stdout)")
        #expect(shown.stdout.contains("API_KEY"))
        let json = try GustBinaries.gust(fixture.home, ["config", "cats", "--json"])
        let release = try GustBinaries.gust(fixture.home, ["releases", "show", "cats", "v3"])
        #expect(release.status == 0)
        let logs = try GustBinaries.gust(fixture.home, ["logs", "cats", "-n", "500"])
        #expect(logs.stdout.contains("calling the API with"), "the careless line is logged, masked: \(logs.stdout)")
        for (what, text) in [("config", shown.output), ("config --json", json.output), ("releases show", release.output),
                             ("releases", try GustBinaries.gust(fixture.home, ["releases", "cats"]).output),
                             ("logs", logs.output), ("gustd's log", fixture.gustd?.logText ?? "")] {
            #expect(!text.contains(Self.secret), "the secret shows in \(what)")
        }

        // The next build sees the vars in ENV_DIR: pip expands ${VAR} in requirements.txt.
        try work.write("requirements.txt", "${PROBE_REQUIREMENT}\n")
        try work.write("__init__.py", Self.app + "import six\n\n@gust.op('six')\ndef six_version():\n    return six.__version__\n")
        try work.commit("Needs a config var to build")
        let refused = try work.push(to: fixture.remote)
        #expect(refused.status != 0, "without the var the requirement is not a package: \(refused.output)")
        #expect(try fixture.call("POST", "/_/functions/has_key").text == "true", "the live release keeps serving")
        #expect(try GustBinaries.gust(fixture.home, ["config", "set", "cats", "PROBE_REQUIREMENT=six"]).status == 0)
        try work.write("README", "build again\n")
        try work.commit("Again")
        let built = try work.push(to: fixture.remote)
        #expect(built.status == 0, "\(built.output)")
        #expect(!built.output.contains(Self.secret))
        #expect(try fixture.call("POST", "/_/functions/six").status == 200)

        let unset = try GustBinaries.gust(fixture.home, ["config", "unset", "cats", "GREETING"])
        #expect(unset.status == 0, "\(unset.output)")
        #expect(try fixture.call("POST", "/_/functions/greeting").text == #""unset""#)
        #expect(try fixture.call("POST", "/_/functions/has_key").text == "true", "other vars stay")
    }

    @Test(.scratchDirectory) func aPrivateAppNeedsAValidToken() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app)
        try work.commit("Private")
        #expect(try work.push(to: fixture.remote).status == 0)
        #expect(try fixture.call("POST", "/_/functions/greeting").status == 200, "public by default")

        #expect(try GustBinaries.gust(fixture.home, ["apps", "set", "cats", "--private"]).status == 0)
        for (method, path) in [("POST", "/_/functions/greeting"), ("GET", "/hello")] {
            let refused = try fixture.call(method, path)
            #expect(refused.status == 403, "\(method) \(path)")
            #expect(refused.json?["code"] as? Int == 403)
            #expect((refused.json?["error"] as? String)?.isEmpty == false)
            #expect(try fixture.call(method, path, headers: ["X-Auth-Token": "gust_forged"]).status == 403)
        }

        let created = try GustBinaries.gust(fixture.home, ["tokens", "create", "cats", "--description", "ci job"])
        #expect(created.status == 0, "\(created.output)")
        let token = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let auth = ["X-Auth-Token": token]
        #expect(try fixture.call("POST", "/_/functions/greeting", headers: auth).status == 200)
        #expect(try fixture.call("GET", "/hello", headers: auth).status == 200)
        // --home may come first, as people write it.
        let listed = try Command.run(GustBinaries.gust, ["--home", fixture.home.path, "tokens", "list", "cats"]).stdout
        #expect(listed.contains("ci job"), "\(listed)")
        #expect(!listed.contains(token), "only the token's hash is kept")

        #expect(try GustBinaries.gust(fixture.home, ["tokens", "revoke", "cats", "1"]).status == 0)
        #expect(try fixture.call("POST", "/_/functions/greeting", headers: auth).status == 403)

        // An expired token is no token.
        let brief = try GustBinaries.gust(fixture.home, ["tokens", "create", "cats", "--expires", "1s"])
        let briefAuth = ["X-Auth-Token": brief.stdout.trimmingCharacters(in: .whitespacesAndNewlines)]
        #expect(try fixture.call("POST", "/_/functions/greeting", headers: briefAuth).status == 200)
        sleep(2)
        #expect(try fixture.call("POST", "/_/functions/greeting", headers: briefAuth).status == 403)

        #expect(try GustBinaries.gust(fixture.home, ["apps", "set", "cats", "--public"]).status == 0)
        #expect(try fixture.call("POST", "/_/functions/greeting").status == 200)
    }

    @Test(.scratchDirectory) func logsFollowStreamsNewLinesOfOneFunction() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app)
        try work.commit("Logs")
        #expect(try work.push(to: fixture.remote).status == 0)
        #expect(try fixture.call("POST", "/_/functions/shout", body: #"{"text": "before"}"#).status == 200)

        let follower = try BackgroundCommand(
            GustBinaries.gust, ["logs", "cats", "-f", "-n", "0", "--function", "shout", "--home", fixture.home.path],
            outputIn: fixture.root
        )
        defer { follower.stop() }
        // Lines come while the command runs; the other op's line is filtered out.
        usleep(500_000)
        #expect(try fixture.call("POST", "/_/functions/careless").status == 200)
        #expect(try fixture.call("POST", "/_/functions/shout", body: #"{"text": "first"}"#).status == 200)
        #expect(follower.waitForOutput(upTo: 10) { $0.contains("SHOUT first") }, "\(follower.output)")
        #expect(try fixture.call("POST", "/_/functions/shout", body: #"{"text": "second"}"#).status == 200)
        #expect(follower.waitForOutput(upTo: 10) { $0.contains("SHOUT second") }, "\(follower.output)")
        let followed = follower.output
        #expect(followed.contains("[op shout] SHOUT first"), "\(followed)")
        #expect(!followed.contains("SHOUT before"), "-n 0 starts with new lines only")
        #expect(!followed.contains("calling the API"), "--function keeps to one function")

        // What goes to stderr is marked so.
        #expect(try fixture.call("POST", "/_/functions/warn").status == 200)
        #expect(follower.waitForOutput(upTo: 5) { _ in
            (try? GustBinaries.gust(fixture.home, ["logs", "cats", "--function", "warn"]).stdout.contains("[op warn] ! careful now")) == true
        })
        let shouted = try GustBinaries.gust(fixture.home, ["logs", "cats", "--function", "shout"]).stdout
        #expect(shouted.contains("[op shout] SHOUT first") && !shouted.contains("!"), "stdout lines are not marked: \(shouted)")

        let tail = try GustBinaries.gust(fixture.home, ["logs", "cats", "-n", "2"]).stdout
        #expect(tail.split(separator: "\n").count == 2, "\(tail)")
    }
}
