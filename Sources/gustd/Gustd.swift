import ArgumentParser
import GustBuild
import GustCore
import GustDaemon
import Foundation
import Logging

/// The router daemon: serves every app's live release over HTTP and deploys
/// releases for `gust-receive` and `gust` through its admin socket.
struct Gustd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gustd",
        abstract: "Gust's router daemon: routes HTTP to each app's live release and runs its instances.",
        discussion: """
            Apps answer at http://APP.DOMAIN:PORT/ and at http://HOST:PORT/apps/APP/. The admin API listens \
            on GUST_HOME/run/gustd.sock (mode 0600); the address actually bound is written to \
            GUST_HOME/run/gustd.http (useful with --http 127.0.0.1:0). Each app's live release runs in a pool of \
            instances (`gust scale`). SIGTERM or SIGINT stops gustd: waiting calls get 503, calls in flight \
            finish (within their time limit), every instance stops, and gustd exits 0; a second signal stops it \
            at once. Started again, it brings back every live release.

            Each instance runs in a cgroup of its own (v2 where its controllers are available, else v1, else \
            rlimits; gustd says which at start) with the app's limits: `gust limits APP` sets them, the --*-limit \
            options give the defaults. An app's log is bounded in rate (--log-rate) and on disk (--log-max).
            """
    )

    @Option(help: ArgumentHelp("Gust's home directory (default: $GUST_HOME, else ~/.gust).", valueName: "path"))
    var home: String?

    @Option(help: ArgumentHelp("Address to serve HTTP on.", valueName: "host:port"))
    var http: String = "127.0.0.1:8080"

    @Option(help: ArgumentHelp("Apps are addressed as APP.DOMAIN.", valueName: "domain"))
    var domain: String = "localhost"

    @Option(help: ArgumentHelp("Time limit of an op or handler call, in seconds, counted from its arrival (waiting for the instance included); past it the caller gets 504.", valueName: "seconds"))
    var functionTimeout: Double = 15

    @Option(help: ArgumentHelp("How long a new instance may take to start and answer, in seconds.", valueName: "seconds"))
    var startTimeout: Double = 30

    @Option(help: ArgumentHelp("Calls that may wait for an app's instances; past it, 503 with Retry-After.", valueName: "n"))
    var queueLimit: Int = 100

    @Option(help: ArgumentHelp("Close a client connection with no request in progress after this many seconds.", valueName: "seconds"))
    var idleTimeout: Double = 60

    @Option(help: ArgumentHelp("Close a new connection that has not sent a whole request head within this many seconds.", valueName: "seconds"))
    var headerTimeout: Double = 10

    @Option(help: ArgumentHelp(
        "Where instances run: bubblewrap (namespaces, the release read-only, each app its own uid from gustd's /etc/subuid range; docs/security.md) or none (as gustd's user). Default: bubblewrap where it works, else none; gustd says at start which is in force.",
        valueName: "bubblewrap|none"))
    var sandbox: String?
    @Option(help: ArgumentHelp("Memory of an instance, for apps `gust limits` did not set (RAM and swap; none: unlimited).", valueName: "size"))
    var memoryLimit: String = "512M"

    @Option(help: ArgumentHelp("CPUs of an instance, for apps `gust limits` did not set: 0.5 is half a core.", valueName: "cpus"))
    var cpuLimit: String = "1"

    @Option(help: ArgumentHelp("Processes and threads of an instance, for apps `gust limits` did not set.", valueName: "n"))
    var pidsLimit: String = "256"

    @Option(help: ArgumentHelp("Size of an instance's private /tmp (enforced by the sandbox launcher, not the direct one).", valueName: "size"))
    var tmpLimit: String = "64M"

    @Option(help: ArgumentHelp("Disk of an app's records store, and of its build cache, for apps `gust limits` did not set.", valueName: "size"))
    var diskLimit: String = "1G"

    @Option(help: ArgumentHelp("gustd's cgroup under each cgroup hierarchy (/sys/fs/cgroup/memory/NAME …); instances get NAME/APP/ID.", valueName: "name"))
    var cgroupRoot: String = "gust"

    @Flag(help: "Do not confine instances at all (no cgroups, no rlimits): for debugging only.")
    var noLimits = false

    @Option(help: ArgumentHelp("Bytes per second an app may log (all its instances together); lines past it are dropped and counted.", valueName: "size"))
    var logRate: String = "1M"

    @Option(help: ArgumentHelp("Size of an app's log file before it rotates (its disk use stays under about twice this).", valueName: "size"))
    var logMax: String = "4M"

    @Option(help: ArgumentHelp("Largest request body gustd accepts, in bytes (a suffix k, m or g for KiB, MiB, GiB); past it, 413.", valueName: "size"))
    var maxBody: String = "10m"

    @Option(help: ArgumentHelp(
        "Where the access log goes: '-' for stdout, 'off', or a file to append to. One line per call: time, app, release, "
            + "instance, method, path (no query string), status, bytes, ms, request id.",
        valueName: "dest"))
    var accessLog: String = "-"

    @Option(help: ArgumentHelp(
        "A proxy in front of gustd whose X-Forwarded-For and X-Forwarded-Proto are believed (repeatable). Without it gustd is "
            + "the edge: a function sees the peer's address as X-Forwarded-For, whatever the client sent.",
        valueName: "ip"))
    var trustedProxy: [String] = []

    @Option(help: ArgumentHelp(
        "Serve Prometheus metrics at GET /metrics on this address, a listener of its own (off unless given; the port bound is written to GUST_HOME/run/gustd.metrics).",
        valueName: "host:port"
    ))
    var metrics: String?

    @Option(help: ArgumentHelp(
        "Serve the web console on this address, a listener of its own (off unless given; sign in with a token from `gust tokens create --console`; the port bound is written to GUST_HOME/run/gustd.console).",
        valueName: "host:port"
    ))
    var console: String?

    @Option(help: ArgumentHelp(
        "After each deploy, remove the artifacts of an app's releases beyond the N newest, keeping the live release and the rollback target as `gust releases prune` does (default: keep all).",
        valueName: "n"
    ))
    var keepReleases: Int?

    private func limitDefaults() throws -> AppLimits {
        AppLimits(
            memory: try LimitSize.parseBytes(memoryLimit), cpuMillis: try LimitSize.parseCPU(cpuLimit),
            pids: try LimitSize.parsePids(pidsLimit), tmp: try LimitSize.parseBytes(tmpLimit), disk: try LimitSize.parseBytes(diskLimit)
        )
    }

    func validate() throws {
        do { _ = try limitDefaults() } catch let error as GustError { throw ValidationError(error.message) }
        guard (try? LimitSize.parseBytes(logRate)) != nil, (try? LimitSize.parseBytes(logMax)) != nil else {
            throw ValidationError("--log-rate and --log-max take sizes like 1M.")
        }
        guard (try? AppName(cgroupRoot)) != nil else { throw ValidationError("--cgroup-root takes a plain name, like gust.") }
        guard parseAddress() != nil else { throw ValidationError("--http takes HOST:PORT, like 127.0.0.1:8080.") }
        guard functionTimeout > 0, startTimeout > 0, idleTimeout > 0, headerTimeout > 0 else {
            throw ValidationError("Time limits must be positive.")
        }
        guard sandbox.map({ SandboxChoice(rawValue: $0) != nil }) ?? true else {
            throw ValidationError("--sandbox takes bubblewrap or none.")
        }
        guard queueLimit >= 0 else { throw ValidationError("--queue-limit must be 0 or more.") }
        guard (try? LimitSize.parseBytes(maxBody)) ?? nil != nil else {
            throw ValidationError("--max-body takes a size such as 1048576, 512k or 10m.")
        }
        if let keepReleases, keepReleases < 0 { throw ValidationError("--keep-releases must be 0 or more.") }
        if let metrics, ListenAddress(parsing: metrics) == nil {
            throw ValidationError("--metrics takes HOST:PORT, like 127.0.0.1:9464.")
        }
        if let console, ListenAddress(parsing: console) == nil {
            throw ValidationError("--console takes HOST:PORT, like 127.0.0.1:8081.")
        }
    }

    private func parseAddress() -> (String, Int)? {
        ListenAddress(parsing: http).map { ($0.host, $0.port) }
    }

    func run() async throws {
        let (host, port) = parseAddress()!
        var logger = Logger(label: "gustd")
        logger.logLevel = .info
        let sandbox: (sandbox: Sandbox?, description: String)
        do { sandbox = try SandboxChoice.resolve(self.sandbox.flatMap(SandboxChoice.init(rawValue:))) } catch {
            FileHandle.standardError.write(Data("gustd: \(error)\n".utf8))
            throw ExitCode(1)
        }
        logger.notice("\(sandbox.description)")
        let configuration = RouterConfiguration(
            home: GustHome.resolve(home), httpHost: host, httpPort: port, domain: domain,
            functionTimeout: .milliseconds(Int(functionTimeout * 1000)), startTimeout: .milliseconds(Int(startTimeout * 1000)),
            maxBodyBytes: (try LimitSize.parseBytes(maxBody)) ?? Int.max, queueLimit: queueLimit,
            idleTimeout: .milliseconds(Int(idleTimeout * 1000)), headerTimeout: .milliseconds(Int(headerTimeout * 1000)),
            sandbox: sandbox.sandbox,
            limitDefaults: try limitDefaults(), cgroupRoot: cgroupRoot, enforcesLimits: !noLimits,
            logBytesPerSecond: (try LimitSize.parseBytes(logRate)) ?? Int.max, logMaxBytes: (try LimitSize.parseBytes(logMax)) ?? Int.max,
            accessLog: AccessLogDestination(argument: accessLog), trustedProxies: trustedProxy,
            metrics: metrics.flatMap(ListenAddress.init(parsing:)), console: console.flatMap(ListenAddress.init(parsing:)),
            keepReleases: keepReleases
        )
        // Every path is absolute by now. Leave the directory gustd was started in: it may be one the
        // user gustd runs as cannot enter (`sudo -u gust gustd` from /root), and libarchive reopens
        // the working directory while it unpacks a release; a daemon should not hold a mount busy either.
        _ = FileManager.default.changeCurrentDirectoryPath("/")
        do {
            try await RouterDaemon.run(configuration, logger: logger)
        } catch let error as GustError {
            printError(error)
            throw ExitCode(1)
        }
    }

    private func printError(_ error: GustError) {
        var stderr = StandardError()
        print("gustd: \(error.message)", to: &stderr)
        if let hint = error.hint { print(hint, to: &stderr) }
    }
}

private struct StandardError: TextOutputStream {
    mutating func write(_ string: String) { FileHandle.standardError.write(Data(string.utf8)) }
}
