#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import GustCore

/// `gust call APP OP [JSON]`: calls an op of a live app through gustd's public
/// port, as a client would (`POST /apps/APP/_/functions/OP`), and prints the
/// answer; `--dev` calls the `gust dev` server of a work tree instead. With
/// `-v`, the status and the lines the function printed during this call
/// (found in the app's log by the call's `X-Request-Id`).
struct CallCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "call",
        abstract: "Call an op of an app and print its answer.",
        discussion: """
            gust call APP OP [JSON] calls the live release of APP through gustd's HTTP port (the address in \
            GUST_HOME/run/gustd.http), as POST /_/functions/OP with JSON as the arguments (default {}; - reads \
            them from stdin). A private app is called with a token made for this call and revoked after it. \
            Over SSH a key scoped to APP may run it, with the JSON on stdin: ssh gust@server call cats food:buy - < args.json

            gust call --dev OP [JSON] calls the `gust dev` server running for the current directory (or --dir).

            The answer goes to stdout; an error status exits 1. -v also prints the status and the lines the \
            function wrote during this call, to stderr.
            """
    )

    @OptionGroup var home: HomeOptions
    @Argument(help: ArgumentHelp("APP OP [JSON], or with --dev: OP [JSON].", valueName: "words"))
    var words: [String] = []
    @Flag(help: "Call the `gust dev` server of the current directory (or --dir).") var dev = false
    @Option(help: ArgumentHelp("With --dev: the app's directory (default: the current directory).", valueName: "dir"))
    var dir: String?
    @Option(help: ArgumentHelp("With --dev: the port it serves on (default: the one it wrote in its cache).", valueName: "n"))
    var port: Int?
    @Flag(name: [.short, .long], help: "Also print the status and the function's log lines (stderr).") var verbose = false

    /// The app named (empty with --dev), for the SSH access check.
    var app: String { dev ? "" : words.first ?? "" }

    /// What a call's arguments may weigh (gustd's default body limit).
    static let maxArguments = 10 * 1024 * 1024

    func validate() throws {
        let wanted = dev ? 1...2 : 2...3
        guard wanted.contains(words.count) else {
            throw ValidationError(dev ? "Give OP and optionally JSON: gust call --dev food:buy '{\"food\": \"salmon\"}'" : "Give APP, OP and optionally JSON: gust call cats food:buy '{\"food\": \"salmon\"}'")
        }
        if !dev, dir != nil || port != nil { throw ValidationError("--dir and --port go with --dev.") }
        if let port, !(1...65535).contains(port) { throw ValidationError("--port takes 1 to 65535.") }
        let op = words[dev ? 0 : 1]
        guard !op.isEmpty, op.utf8.count <= 200, !op.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7F || $0 == "/" }) else {
            throw ValidationError("'\(op.prefix(60))' is not an op name: names have no spaces, slashes or control characters.")
        }
    }

    func run() throws {
        let op = words[dev ? 0 : 1]
        let arguments = try Self.arguments(words.count > (dev ? 1 : 2) ? words.last! : nil)
        let encoded = op.addingPercentEncoding(withAllowedCharacters: Self.pathAllowed) ?? op
        let home: GustHome
        let app: AppName
        let address: ListenAddressText
        let target: String
        var headers: [(String, String)] = [("Content-Type", "application/json")]
        var revoke: (() -> Void)?
        if dev {
            let workspace = try DevWorkspace.locate(dir)
            (home, app, target) = (workspace.home, workspace.app, "/_/functions/" + encoded)
            if let port {
                address = ListenAddressText("127.0.0.1:\(port)")!
            } else {
                guard workspace.runningPort != nil, let text = try? String(contentsOf: workspace.addressFile, encoding: .utf8), let found = ListenAddressText(text) else {
                    throw GustError("No gust dev is running for \(DevWorkspace.shown(workspace.tree.path)).", hint: "Start it there with `gust dev`, or give --dir.")
                }
                address = found
            }
        } else {
            app = try parseAppName(words[0])
            let store = try self.home.openStore()
            home = store.home
            let found = try store.requireApp(app)
            guard let text = try? String(contentsOf: home.run.appendingPathComponent("gustd.http"), encoding: .utf8),
                let listening = ListenAddressText(text)
            else { throw AdminClient(home: home).notRunning("nothing answers calls", then: "call again") }
            (address, target) = (listening, "/apps/\(app)/_/functions/" + encoded)
            if found.isPrivate {
                // A scoped key may call its app: a token for this call only, deleted after it (a
                // revoked row per call would pile up in the store every app shares).
                let made = try store.createToken(app, description: "gust call", expiresAt: Date().addingTimeInterval(120))
                headers.append(("X-Auth-Token", made.secret))
                revoke = { try? store.deleteToken(app, id: made.token.id) }
            }
        }
        defer { revoke?() }
        let requestID = "gust-call-" + Self.randomHex()
        headers.append(("X-Request-Id", requestID))
        let started = ContinuousClock.now
        let answer = try LoopbackHTTP.exchange(
            host: address.host, port: address.port, method: "POST", target: target, headers: headers, body: arguments, timeout: .seconds(120)
        )
        let elapsed = ContinuousClock.now - started
        if verbose {
            Self.standardError("HTTP \(answer.status) in \(String(format: "%.1f", elapsed.seconds * 1000)) ms, request \(requestID)")
            for entry in Self.logLines(of: requestID, home: home, app: app) { Self.standardError(DevServer.format(entry)) }
        }
        var body = Data(Self.shownAnswer(answer.body).utf8)
        if body.last != UInt8(ascii: "\n") { body.append(UInt8(ascii: "\n")) }
        FileHandle.standardOutput.write(body)
        if answer.status >= 400 { throw ExitCode(1) }
    }

    /// An op's answer as printed: JSON, so what a terminal would act on is written as `\uXXXX`
    /// (`jsonVisibleAtTerminal`): the same JSON where the answer was JSON, and no escape sequence,
    /// carriage return or bidi override for the terminal (over SSH too, where the server sees no
    /// terminal) where an app's code wrote its own bytes as the answer.
    static func shownAnswer(_ body: Data) -> String {
        String(decoding: body, as: UTF8.self).jsonVisibleAtTerminal
    }

    /// The JSON given (`-`: stdin), checked; `{}` when none.
    static func arguments(_ given: String?) throws -> Data {
        guard let given else { return Data("{}".utf8) }
        let data: Data
        if given == "-" {
            data = FileHandle.standardInput.readData(ofLength: maxArguments + 1)
        } else {
            data = Data(given.utf8)
        }
        guard data.count <= maxArguments else { throw ValidationError("The arguments are larger than 10 MiB.") }
        guard (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) != nil else {
            throw ValidationError("The arguments are not JSON: give an object such as '{\"food\": \"salmon\"}'.")
        }
        return data
    }

    /// The lines the call printed. They reach the log through a pipe, just after the answer:
    /// gustd says when its instances' output is all in the log; a gustd that cannot say is
    /// read until no more lines come.
    static func logLines(of requestID: String, home: GustHome, app: AppName) -> [LogEntry] {
        let log = AppLog(home: home, app: app)
        if AdminClient(home: home).awaitOutputDelivered(app: app) { return log.tail(5000).filter { $0.request == requestID } }
        var found: [LogEntry] = []
        for attempt in 0..<10 {
            usleep(100_000)
            let now = log.tail(5000).filter { $0.request == requestID }
            if attempt > 0, now.count == found.count { return now }
            found = now
        }
        return found
    }

    static let pathAllowed = CharacterSet.urlPathAllowed.subtracting(CharacterSet(charactersIn: "/?#%;"))

    static func randomHex() -> String {
        var random = SystemRandomNumberGenerator()
        return (0..<2).map { _ in String(format: "%016llx", random.next() as UInt64) }.joined()
    }

    static func standardError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
