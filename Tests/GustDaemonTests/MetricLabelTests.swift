import GustCore
@testable import GustDaemon
import Prometheus
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

    /// Schedules' and hooks' names, which each release may change (a push, or a config the app's
    /// code reads at import), are held to the same budget as its functions': their series were
    /// made for every name ever run and never removed.
    @Test func scheduleAndHookSeriesStayWithinTheAppsBudget() throws {
        let registry = GustMetrics.bootstrap()
        let app = try AppName("label-flood")
        for index in 0..<(FunctionLabelBudget.perApp + 100) {
            GustMetrics.scheduleRun(app, schedule: "every-\(index)", outcome: .ok)
            GustMetrics.hookFailed(app, hook: "before_save t\(index)")
        }
        var text: [UInt8] = []
        registry.emit(into: &text)
        let lines = String(decoding: text, as: UTF8.self).split(separator: "\n").filter { $0.contains("app=\"label-flood\"") }
        let schedules = lines.filter { $0.hasPrefix(MetricCatalogue.scheduleRuns) }, hooks = lines.filter { $0.hasPrefix(MetricCatalogue.hookFailures) }
        #expect(schedules.count + hooks.count <= FunctionLabelBudget.perApp + 2, "\(schedules.count) schedule and \(hooks.count) hook series")
        #expect(lines.contains { $0.contains("\"\(FunctionLabel.other)\"") })
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

    /// Each name is a label value of a dozen series: names of 80 KB made scrapes of hundreds of MB.
    @Test func aManifestNamingAFunctionLongerThanANameMayBeIsRefused() throws {
        var long = manifest
        long.ops = [.init(name: String(repeating: "o", count: FunctionManifest.longestName + 1))]
        do {
            try long.checkBounds(version: 4)
            Issue.record("a \(FunctionManifest.longestName + 1)-byte op name was taken")
        } catch {
            #expect("\(error)".contains("v4 declares an op whose name is longer than \(FunctionManifest.longestName) bytes"), "\(error)")
        }
        long.ops = [.init(name: String(repeating: "o", count: FunctionManifest.longestName))]
        long.handlers = [.init(path: "/" + String(repeating: "é", count: FunctionManifest.longestName / 2), methods: ["GET"])]
        #expect(throws: GustError.self) { try long.checkBounds(version: 4) }
        long.handlers = [.init(path: "/" + String(repeating: "p", count: FunctionManifest.longestName - 1), methods: ["GET"])]
        long.hooks = [.init(event: "before_save", type: String(repeating: "t", count: FunctionManifest.longestName + 1), name: nil)]
        #expect(throws: GustError.self) { try long.checkBounds(version: 4) }
        long.hooks = []
        #expect(throws: Never.self) { try long.checkBounds(version: 4) }
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
