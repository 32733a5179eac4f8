@testable import GustDaemon
import Testing

/// The labels of gustd's metrics stay bounded: functions only as the manifest
/// names them, statuses only as classes.
@Suite struct MetricLabelTests {
    let manifest = FunctionManifest(
        protocolVersion: 1, runtime: "python",
        ops: [.init(name: "food:buy")],
        handlers: [.init(path: "cat/feed", methods: ["GET"]), .init(path: "/", methods: ["GET"])],
        schedules: [], hooks: []
    )

    @Test func anOpIsNamedOnlyIfTheManifestDeclaresIt() {
        #expect(FunctionLabel.op("food:buy", in: manifest) == "food:buy")
        #expect(FunctionLabel.op("food:sell", in: manifest) == "other")
        #expect(FunctionLabel.op("food:buy", in: nil) == "other")
    }

    @Test func aHandlerIsNamedAsRegisteredWhateverItsSlashes() {
        #expect(FunctionLabel.handler("/cat/feed", in: manifest) == "/cat/feed")
        #expect(FunctionLabel.handler("/cat/feed/", in: manifest) == "/cat/feed")
        #expect(FunctionLabel.handler("/", in: manifest) == "/")
        #expect(FunctionLabel.handler("/cat/feed/123", in: manifest) == "other")
        #expect(FunctionLabel.handler("/wp-login.php", in: manifest) == "other")
    }

    @Test func statusesAreClasses() {
        #expect(GustMetrics.statusClass(200) == "2xx")
        #expect(GustMetrics.statusClass(404) == "4xx")
        #expect(GustMetrics.statusClass(499) == "4xx")
        #expect(GustMetrics.statusClass(504) == "5xx")
        #expect(GustMetrics.statusClass(0) == "5xx")
        #expect(GustMetrics.statusClass(999) == "5xx")
    }
}
