import ArgumentParser
import Foundation
import GustCore

/// `gust ps APP`: the instances gustd runs for the app, asked of gustd itself.
struct PsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps",
        abstract: "List an app's running instances: state, calls, memory, uptime.",
        discussion: """
            Each instance of the live release (and of a replaced one still finishing its calls) with its id, \
            release, pid, state (starting, idle, busy, draining), calls answered and in flight, memory (its \
            proportional share, PSS; under the sandbox its cgroup's) and uptime; then the live release's \
            zygote, if one is resident (state zygote: the Python process its instances are forked from, \
            stopped after zygote-idle, 4 × the app's idle). An app scaled to zero lists no instance. \
            Needs a running gustd.
            """
    )
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The app.") var app: String

    func run() throws {
        let name = try parseAppName(app)
        let store = try home.openStore()
        _ = try store.requireApp(name)
        let admin = AdminClient(home: store.home)
        guard admin.isRunning else { throw admin.notRunning("no instance of \(name) runs", then: "run `gust ps \(name)` again") }
        let instances = try admin.instances(of: name)
        if output.json { return print(try Formatting.json(instances)) }
        guard !instances.isEmpty else {
            let scale = try store.scale(name)
            return print("No instances of \(name) run now" + (scale.min == 0 ? " (scaled to zero: the next call starts one)." : "."))
        }
        print(Formatting.table(["ID", "RELEASE", "PID", "STATE", "CALLS", "IN FLIGHT", "MEMORY", "UPTIME"], instances.map { instance in
            [instance.id ?? "-", "v\(instance.release)", instance.pid.map(String.init) ?? "-", instance.state, String(instance.served),
             String(instance.inFlight), instance.memoryBytes.map { "\(ByteCount($0))" } ?? "-",
             instance.uptimeSeconds.map { Duration.seconds(Int($0)).shortText } ?? "-"]
        }))
    }
}
