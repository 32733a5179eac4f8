import GustCore
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

    /// An app's releases can each declare new names: gustd keeps at most `perApp` of an app's, the
    /// rest counted as `other`, and another app's room is its own.
    @Test func anAppsFunctionLabelsAreBoundedAcrossItsReleases() throws {
        var budget = FunctionLabelBudget()
        let (cats, dogs) = (try AppName("cats"), try AppName("dogs"))
        for index in 0..<FunctionLabelBudget.perApp { #expect(budget.label("op\(index)", of: cats) == "op\(index)") }
        #expect(budget.label("op-new", of: cats) == FunctionLabel.other)
        #expect(budget.label("op7", of: cats) == "op7", "a name already used keeps its series")
        #expect(budget.label("op-new", of: dogs) == "op-new")
    }

    @Test func aManifestDeclaringTooManyFunctionsOfAKindIsRefused() throws {
        var many = manifest
        many.ops = (0...FunctionManifest.maxFunctions).map { .init(name: "op\($0)") }
        #expect(throws: GustError.self) { try many.checkBounds(version: 3) }
        do { try many.checkBounds(version: 3) } catch {
            #expect("\(error)".contains("v3 declares 1001 ops: at most 1000 of each kind are served."), "\(error)")
        }
        many.ops.removeLast()
        #expect(throws: Never.self) { try many.checkBounds(version: 3) }
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
