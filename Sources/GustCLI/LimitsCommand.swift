import ArgumentParser
import Foundation
import GustCore

/// `gust limits APP [--memory 256M] [--cpu 0.5] [--pids 64] [--tmp 64M] [--disk 1G]`:
/// what one app may use, kept in the store across deploys and restarts; and
/// `gust limits --ceilings …`, the most a scoped SSH key may give its apps
/// (which also caps its `gust scale --max`).
struct LimitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "limits",
        abstract: "Show or change what an app's instances may use.",
        discussion: """
            Memory, CPU, processes and /tmp are per instance; disk bounds the app's records store and, \
            separately, its build cache, each release's slug (as unpacked) and its git repository (every \
            branch and tag: a push that would grow it past the limit is refused). Sizes: 64M, 256M, 1G, with their unit (at least 16M of memory, 1M of \
            /tmp and disk); CPU: 0.5 is half a core. `default` returns a \
            value to gustd's default (gustd --memory-limit …). A change applies to the next instance started; \
            running instances keep their limits until they are replaced (the next deploy, `gust scale`, or \
            when they idle out). An instance over its memory is killed: the call gets 502 "out of memory". \
            With --ceilings (admins only): the most a key scoped to some apps may set, and its `scale --max`; \
            `none` lifts a ceiling.
            """
    )
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The app (omit with --ceilings).") var appName: String?
    @Flag(help: "Show or set the ceilings for scoped SSH keys instead of an app's limits (admins).") var ceilings = false
    @Option(help: ArgumentHelp("Memory of one instance (RAM and swap).", valueName: "size")) var memory: String?
    @Option(help: ArgumentHelp("CPUs of one instance: 0.5, 1, 2, 250m (at most the machine's cores).", valueName: "cpus")) var cpu: String?
    @Option(help: ArgumentHelp("Processes and threads of one instance.", valueName: "n")) var pids: String?
    @Option(help: ArgumentHelp("Size of one instance's private /tmp (enforced by the sandbox).", valueName: "size")) var tmp: String?
    @Option(help: ArgumentHelp("Disk of the app's records store, of its build cache, of each slug and of its git repository.", valueName: "size")) var disk: String?
    @Option(help: ArgumentHelp("With --ceilings: the most `gust scale --max` a scoped key may set.", valueName: "n")) var maxInstances: String?

    /// Set by `ssh-command` for a key scoped to some apps: values must stay under the ceilings.
    var underCeilings = false

    var app: String { appName ?? "" }

    func validate() throws {
        if ceilings, appName != nil { throw ValidationError("--ceilings applies to every scoped key's apps: name no app.") }
        if !ceilings, appName == nil { throw ValidationError("Name the app: gust limits APP (or gust limits --ceilings).") }
        if !ceilings, maxInstances != nil { throw ValidationError("--max-instances goes with --ceilings; an app's instances are `gust scale APP --max`.") }
    }

    private var changing: Bool { !change.isEmpty || maxInstances != nil }
    /// The five limits as written.
    private var change: LimitsChange { LimitsChange(memory: memory, cpu: cpu, pids: pids, tmp: tmp, disk: disk) }

    func run() throws {
        let store = try home.openStore()
        if ceilings { return try runCeilings(store) }
        let name = try parseAppName(app)
        _ = try store.requireApp(name)
        if changing {
            let (actor, source) = Store.cliActor()
            do {
                try store.changeLimits(name, change, underCeilings: underCeilings, actor: actor, source: source)
            } catch let error as GustError {
                throw ValidationError(error.message)
            }
        }
        let own = try store.limits(name)
        let effective = try store.effectiveLimits(name)
        if output.json { return print(try Formatting.json(LimitsView(app: name.rawValue, limits: effective, own: own))) }
        print("\(name): \(effective.summary)")
        let defaulted = [("memory", own.memory), ("cpu", own.cpuMillis), ("pids", own.pids), ("tmp", own.tmp), ("disk", own.disk)]
            .filter { $0.1 == nil }.map(\.0)
        if !defaulted.isEmpty { print("  gustd's defaults: \(defaulted.joined(separator: ", "))") }
        if changing { print("  New instances get these limits; running ones keep theirs until they are replaced.") }
    }

    private func runCeilings(_ store: Store) throws {
        var current = try store.limitCeilings()
        if changing {
            func ceiling(_ text: String?, _ old: Int?, _ parse: (String) throws -> Int?) throws -> Int? {
                guard let text else { return old }
                do { return try parse(text) } catch let error as GustError { throw ValidationError(error.message) }
            }
            current.limits = try change.merged(into: current.limits, ceiling)
            current.maxInstances = try ceiling(maxInstances, current.maxInstances) { text in
                if text.lowercased() == "none" { return nil }
                guard let n = Int(text), n >= 1, n <= ScaleSettings.maxInstances else {
                    throw GustError("--max-instances must be between 1 and \(ScaleSettings.maxInstances), or none.")
                }
                return n
            }
            try store.setLimitCeilings(current)
        }
        if output.json { return print(try Formatting.json(current)) }
        print("Ceilings for scoped keys: \(current.limits.summary), max instances \(current.maxInstances.map(String.init) ?? "none")")
    }
}

/// `gust limits APP --json`: the limits in force, and which of them the app set itself.
private struct LimitsView: Encodable {
    var app: String
    var limits: AppLimits
    var own: AppLimits
}
