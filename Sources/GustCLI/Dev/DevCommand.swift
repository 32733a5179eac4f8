import ArgumentParser
import Foundation
import GustCore

/// `gust dev [DIR]`: runs the app in DIR on 127.0.0.1 as gustd would serve it
/// after a push, and reloads it on every save (DevServer); `gust dev --run
/// SCHEDULE` runs a schedule of the running dev server now.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Run an app's functions locally, reloading them when you save.",
        discussion: """
            Serves the app in DIR (default: the current directory; a git work tree or not) at \
            http://127.0.0.1:PORT/ with the same buildpack, runtime and gateway as a server: its ops at \
            POST /_/functions/NAME, its handlers by path, /_/health, a record store with its hooks \
            (/_/records/TYPE), and its schedules, listed at start and run on their spec. Config comes \
            from DIR/.env (NAME=value lines). Only loopback host names are answered (localhost, \
            127.0.0.1, [::1]; any other Host gets 403), so a web page elsewhere cannot rebind its \
            name to this machine and call the app, and WebSockets only from the app's own pages \
            (a loopback Origin).

            Dependencies (requirements.txt, package.json) are installed once per content; a change to \
            them installs again. Any other saved change starts the new code and prints the functions it \
            registers; if it fails at import, the traceback is printed and the last good code keeps \
            answering. `gust dev` runs gustd over a home of its own in $XDG_CACHE_HOME/gust/dev (else \
            ~/.cache/gust/dev): no GUST_HOME and no running gustd needed.

            Call it with curl or `gust call --dev OP [JSON]`; run a schedule at once with \
            `gust dev --run NAME` (in another terminal, in the same DIR), or with a key in gust dev's \
            own terminal: s lists the schedules, 1-9 runs the one of that number now, r runs the last \
            one again, h lists the keys. WebSockets (an ASGI app's, or ws on gust.server in Node) work \
            as on a server.
            """
    )

    @Argument(help: ArgumentHelp("The app's directory (default: the current directory).", valueName: "dir"))
    var directory: String?

    @Option(help: ArgumentHelp("Port to serve on, on 127.0.0.1 (0: any free port).", valueName: "n"))
    var port: Int = 8000

    @Option(help: ArgumentHelp("Run this schedule of the dev server already running for DIR now, print how it went, and exit.", valueName: "schedule"))
    var run: String?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port takes 0 to 65535.") }
        if let run, run.isEmpty || run.utf8.count > 200 || run.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw ValidationError("--run takes a schedule's name, as `gust dev` lists it.")
        }
    }

    func run() async throws {
        let workspace = try DevWorkspace.locate(directory)
        if let schedule = run {
            try Self.runSchedule(schedule, workspace: workspace)
            return
        }
        let server = try DevServer(workspace: workspace, installation: try Installation.current())
        try await server.run(port: port)
    }

    /// Asks the running dev server to run `name` now; prints its output and outcome.
    static func runSchedule(_ name: String, workspace: DevWorkspace) throws {
        guard workspace.runningPort != nil else {
            throw GustError(
                "No gust dev is running for \(DevWorkspace.shown(workspace.tree.path)).",
                hint: "Start it first (gust dev \(DevWorkspace.shown(workspace.tree.path))), then run the schedule from another terminal."
            )
        }
        let started = Date()
        let failure = try AdminClient(home: workspace.home).runSchedule(app: workspace.app, name: name)
        let log = AppLog(home: workspace.home, app: workspace.app)
        for entry in log.tail(500, function: "schedule \(name)") where entry.time >= started.addingTimeInterval(-0.01) {
            print(DevServer.format(entry))
        }
        if let failure {
            FileHandle.standardError.write(Data("gust: schedule \(name) failed: \(failure)\n".utf8))
            throw ExitCode(1)
        }
    }
}
