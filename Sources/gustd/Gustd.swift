import ArgumentParser
import GustBuild
import GustCore
import GustDaemon
import Foundation
import Logging
import NIOCore

/// The router daemon: serves every app's live release over HTTP and deploys
/// releases for `gust-receive` and `gust` through its admin socket.
struct Gustd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gustd",
        abstract: "Gust's router daemon: routes HTTP to each app's live release and runs its instances.",
        discussion: """
            Apps answer at http://APP.DOMAIN:PORT/, at http://HOST:PORT/apps/APP/ and at their own domains (`gust domains`); \
            with --https also over HTTPS, with certificates from ACME (Let's Encrypt by default, validated by HTTP-01 \
            on the HTTP port, which must then be reachable as port 80) or --tls-cert. The admin API listens \
            on GUST_HOME/run/gustd.sock (mode 0600); the address actually bound is written to \
            GUST_HOME/run/gustd.http (useful with --http 127.0.0.1:0). Each app's live release runs in a pool of \
            instances (`gust scale`). SIGTERM or SIGINT stops gustd: waiting calls get 503, calls in flight \
            finish (within their time limit), every instance stops, and gustd exits 0; a second signal stops it \
            at once. Started again, it brings back every live release.

            Upgrading without refusing a connection (docs/operations.md, "Upgrading gustd"): gustd serves the listening \
            sockets it is started with (systemd's socket activation: LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES named http, \
            https, console, metrics; contrib/systemd/gustd.socket) instead of binding those addresses, and on SIGUSR2 it \
            starts the gustd binary now at its own path with its arguments and sockets, then stops accepting, drains and \
            exits once the new one is up. GUST_HOME/run/gustd.pid holds the PID of the gustd serving.

            Each instance runs in a cgroup of its own (v2 where its controllers are available, else v1, else \
            rlimits; gustd says which at start) with the app's limits: `gust limits APP` sets them, the --*-limit \
            options give the defaults. A push's build runs in gustd, in the app's sandbox and under its limits, and \
            within --build-timeout and --build-output-limit. An app's log is bounded in rate (--log-rate), on disk (--log-max, --log-files) and in age (--log-max-age); `gust drains` forwards it.
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

    @Option(name: .customLong("websocket-idle-timeout"), help: ArgumentHelp(
        "Close a WebSocket (1001, going away) that carried nothing either way for this many seconds.", valueName: "seconds"))
    var webSocketIdleTimeout: Double = 300

    @Option(help: ArgumentHelp(
        "Where instances run: bubblewrap (namespaces, the release read-only, each app its own uid from gustd's /etc/subuid range; docs/security.md) or none (as gustd's user). Default: bubblewrap where it works, else none; gustd says at start which is in force.",
        valueName: "bubblewrap|none"))
    var sandbox: String?
    @Option(help: ArgumentHelp("Time limit of a push's build (detect, compile, release), in seconds; past it the build is stopped and the push fails naming it.", valueName: "seconds"))
    var buildTimeout: Double = 900

    @Option(help: ArgumentHelp("Seconds a build may be silent before the pusher is told it is still building (keeping a quiet connection open).", valueName: "seconds"))
    var buildHeartbeat: Double = 20

    @Option(help: ArgumentHelp("Output a build may print (to the pusher and its build log); the line past it stops the build.", valueName: "size"))
    var buildOutputLimit: String = "8M"

    @Option(help: ArgumentHelp("Memory of an instance, for apps `gust limits` did not set (RAM and swap, at least 16M; none: unlimited).", valueName: "size"))
    var memoryLimit: String = "512M"

    @Option(help: ArgumentHelp("CPUs of an instance, for apps `gust limits` did not set: 0.5 is half a core.", valueName: "cpus"))
    var cpuLimit: String = "1"

    @Option(help: ArgumentHelp("Processes and threads of an instance, for apps `gust limits` did not set.", valueName: "n"))
    var pidsLimit: String = "256"

    @Option(help: ArgumentHelp("Size of an instance's private /tmp (enforced by the sandbox launcher, not the direct one).", valueName: "size"))
    var tmpLimit: String = "64M"

    @Option(help: ArgumentHelp("Disk of an app's records store, and of its build cache, for apps `gust limits` did not set.", valueName: "size"))
    var diskLimit: String = "1G"

    @Option(help: ArgumentHelp(
        "gustd's cgroup under each cgroup hierarchy (/sys/fs/cgroup/memory/NAME …); instances get NAME/APP/ID. At start gustd kills every process in a cgroup under NAME (what a killed gustd left), another gustd's too: two gustds on one host need different names (docs/operations.md).",
        valueName: "name"))
    var cgroupRoot: String = "gust"

    @Option(help: ArgumentHelp(
        "gustd's own CPU weight, in cgroup v2's units (1 to 10000; 100 is a cgroup's default; on cgroup v1 cpu.shares N × 1024 / 100): at start gustd moves itself into a cgroup of its own beside --cgroup-root's tree (NAME + d: /sys/fs/cgroup/cpu/gustd), so that under load its event loops are not one session's share among every other's. off (or 0) leaves gustd where it is. Under systemd gustd stays in its unit's cgroup (the unit's CPUWeight= sets the weight); where the cgroup cannot be made, gustd says why and runs on.",
        valueName: "n|off"))
    var cpuWeight: String = "\(GustdCgroup.defaultWeight)"

    @Flag(help: "Do not confine instances at all (no cgroups, no rlimits): for debugging only.")
    var noLimits = false

    @Option(help: ArgumentHelp("Bytes per second an app may log (all its instances together; a line counts as at least 128 bytes); lines past it are dropped and counted, and while it is past, the app's writes to its output wait for their pipe.", valueName: "size"))
    var logRate: String = "1M"

    @Option(help: ArgumentHelp("Size of an app's log file before it rotates into APP.log.1, .2, ….", valueName: "size"))
    var logMax: String = "4M"

    @Option(help: ArgumentHelp("Rotated log files kept per app (disk use stays under (n + 1) × --log-max).", valueName: "n"))
    var logFiles: Int = 1

    @Option(help: ArgumentHelp("Delete log lines older than this, a file at a time: 12h, 7d, 4w (default: keep while they fit).", valueName: "age"))
    var logMaxAge: String?

    @Option(help: ArgumentHelp("Largest request body gustd accepts, in bytes (a suffix k, m or g for KiB, MiB, GiB); past it, 413.", valueName: "size"))
    var maxBody: String = "10m"

    @Option(help: ArgumentHelp(
        "Where the access log goes: '-' for stdout, 'off', or a file to append to (opened anew once it was renamed or "
            + "removed, as logrotate does). One line per call: time, app, release, instance, method, path (no query string), "
            + "status, bytes, ms, request id.",
        valueName: "dest"))
    var accessLog: String = "-"

    @Option(help: ArgumentHelp(
        "A proxy in front of gustd whose X-Forwarded-For and X-Forwarded-Proto are believed (repeatable). Without it gustd is "
            + "the edge: a function sees the peer's address as X-Forwarded-For, whatever the client sent. A trusted proxy's "
            + "connections are not bounded by address (any other client address holds at most a quarter of gustd's connections).",
        valueName: "ip"))
    var trustedProxy: [String] = []

    @Option(name: .customLong("reserve-domain"), help: ArgumentHelp(
        "A name of the server's own (its console's, its SSH host's) that no app may add as its domain, nor any name under it (repeatable).",
        valueName: "name"))
    var reservedDomains: [String] = []

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

    @Option(help: ArgumentHelp(
        "Also serve HTTPS on this address (TLS 1.2 and 1.3, HTTP/1.1), choosing the certificate by the name the client asks for (SNI): the one gustd got by ACME for an app's own domain (`gust domains`), else --tls-cert. The port bound is written to GUST_HOME/run/gustd.https.",
        valueName: "host:port"))
    var https: String?

    @Option(help: ArgumentHelp("Your own certificate chain (PEM), such as a wildcard for *.DOMAIN: served with --https for every name without a certificate of its own.", valueName: "file"))
    var tlsCert: String?

    @Option(help: ArgumentHelp("The private key (PEM) of --tls-cert.", valueName: "file"))
    var tlsKey: String?

    @Flag(help: "With --https: answer HTTP requests for an app's names with 301 to HTTPS (ACME's challenge path excepted).")
    var redirectHttps = false

    @Option(help: ArgumentHelp("With --https: the ACME directory certificates for the apps' own domains come from.", valueName: "url"))
    var acmeDirectory: String = ACMESettings.letsEncrypt

    @Option(help: ArgumentHelp("With --https: the contact address of gustd's ACME account (the CA writes about expiring certificates).", valueName: "email"))
    var acmeEmail: String?

    @Option(help: ArgumentHelp("Trust these PEM roots for the ACME directory's HTTPS instead of the system's (a private or test CA).", valueName: "file"))
    var acmeCaBundle: String?

    @Flag(help: "With --https: get no certificates by ACME (serve --tls-cert only).")
    var noAcme = false

    @Option(help: ArgumentHelp(
        "Send every request with a loopback host (localhost, 127.0.0.1, [::1]; others get 403) to this app, whatever its path (what `gust dev` runs: one app at the root); a WebSocket only from a loopback Origin.",
        valueName: "app"
    ))
    var onlyApp: String?

    // Read before the loops are made, by Sources/gustd/main.swift (`EventLoopCount`); here for --help and its check.
    @Option(help: ArgumentHelp(
        "Threads that serve connections (SwiftNIO event loops; default: half the cores, at least one, leaving the rest to the instances). Where gustd's own work is most of the load and cores are to spare, more can answer more (docs/operations.md, \"Event loops\").",
        valueName: "n"
    ))
    var eventLoops: Int?

    private func limitDefaults() throws -> AppLimits {
        try LimitsChange(memory: memoryLimit, cpu: cpuLimit, pids: pidsLimit, tmp: tmpLimit, disk: diskLimit).parsed()
    }

    func validate() throws {
        do { _ = try limitDefaults() } catch let error as GustError { throw ValidationError(error.message) }
        guard (try? LimitSize.parseBytes(logRate)) != nil, (try? LimitSize.parseBytes(logMax)) != nil else {
            throw ValidationError("--log-rate and --log-max take sizes like 1M.")
        }
        guard let output = try? LimitSize.parseBytes(buildOutputLimit), output > 0 else {
            throw ValidationError("--build-output-limit takes a size like 8M.")
        }
        if let eventLoops, !EventLoopCount.range.contains(eventLoops) {
            throw ValidationError("--event-loops takes \(EventLoopCount.range.lowerBound) to \(EventLoopCount.range.upperBound).")
        }
        guard (1...100).contains(logFiles) else { throw ValidationError("--log-files takes 1 to 100.") }
        if let logMaxAge, LogRetention.parseAge(logMaxAge) == nil {
            throw ValidationError("--log-max-age takes an age like 12h, 7d or 4w.")
        }
        guard (try? AppName(cgroupRoot)) != nil else { throw ValidationError("--cgroup-root takes a plain name, like gust.") }
        guard GustdCgroup.parse(cpuWeight) != nil else { throw ValidationError("--cpu-weight takes a weight from 1 to 10000, or off.") }
        guard parseAddress() != nil else { throw ValidationError("--http takes HOST:PORT, like 127.0.0.1:8080.") }
        // At most a leap year of seconds: each becomes whole milliseconds, and `inf` or 1e300 would
        // trap there (and no limit of these needs more).
        let timeLimits = [functionTimeout, startTimeout, idleTimeout, headerTimeout, webSocketIdleTimeout, buildTimeout, buildHeartbeat]
        guard timeLimits.allSatisfy({ $0 > 0 && $0 <= 366 * 86400 }) else {
            throw ValidationError("Time limits must be positive, in seconds, and at most 366 days (31622400).")
        }
        guard sandbox.map({ SandboxChoice(rawValue: $0) != nil }) ?? true else {
            throw ValidationError("--sandbox takes bubblewrap or none.")
        }
        guard queueLimit >= 0 else { throw ValidationError("--queue-limit must be 0 or more.") }
        guard (try? LimitSize.parseBytes(maxBody)) ?? nil != nil else {
            throw ValidationError("--max-body takes a size such as 1048576, 512k or 10m.")
        }
        if let keepReleases, keepReleases < 0 { throw ValidationError("--keep-releases must be 0 or more.") }
        if let https, ListenAddress(parsing: https) == nil {
            throw ValidationError("--https takes HOST:PORT, like 0.0.0.0:443.")
        }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together.") }
        if https == nil, tlsCert != nil || redirectHttps || acmeEmail != nil || acmeCaBundle != nil || noAcme {
            throw ValidationError("--tls-cert, --redirect-https and the --acme options need --https.")
        }
        guard let url = URL(string: acmeDirectory), url.scheme == "https", url.host != nil else {
            throw ValidationError("--acme-directory takes an https:// URL.")
        }
        if let acmeEmail, !Self.isEmail(acmeEmail) { throw ValidationError("--acme-email takes an address like admin@example.com.") }
        if let onlyApp, (try? AppName(onlyApp)) == nil { throw ValidationError("--only-app takes an app name: \(AppName.rule).") }
        for name in reservedDomains where (try? DomainName(name)) == nil {
            throw ValidationError("--reserve-domain takes a domain name, like console.example.com: '\(name)' is not one.")
        }
        if let metrics, ListenAddress(parsing: metrics) == nil {
            throw ValidationError("--metrics takes HOST:PORT, like 127.0.0.1:9464.")
        }
        if let console, ListenAddress(parsing: console) == nil {
            throw ValidationError("--console takes HOST:PORT, like 127.0.0.1:8081.")
        }
    }

    /// One `@`, a domain after it, nothing a mailto: URL or the CA would trip on.
    static func isEmail(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].utf8.count <= 64, DomainName.isValid(String(parts[1]).lowercased()) else { return false }
        return parts[0].unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "._+-".unicodeScalars.contains($0) }
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
        let loops = NIOSingletons.groupLoopCountSuggestion
        let why = eventLoops == nil ? " (half of \(System.coreCount) cores, at least one; --event-loops sets it)" : ""
        logger.notice("\(loops) event \(loops == 1 ? "loop serves" : "loops serve") connections\(why)")
        var configuration = RouterConfiguration(
            home: GustHome.resolve(home), httpHost: host, httpPort: port, domain: domain,
            functionTimeout: .milliseconds(Int(functionTimeout * 1000)), startTimeout: .milliseconds(Int(startTimeout * 1000)),
            maxBodyBytes: (try LimitSize.parseBytes(maxBody)) ?? Int.max, queueLimit: queueLimit,
            idleTimeout: .milliseconds(Int(idleTimeout * 1000)), headerTimeout: .milliseconds(Int(headerTimeout * 1000)),
            sandbox: sandbox.sandbox,
            limitDefaults: try limitDefaults(), cgroupRoot: cgroupRoot, enforcesLimits: !noLimits,
            logBytesPerSecond: (try LimitSize.parseBytes(logRate)) ?? Int.max, logRetention: LogRetention(
                maxBytes: (try LimitSize.parseBytes(logMax)) ?? Int.max, files: logFiles, maxAge: logMaxAge.flatMap(LogRetention.parseAge)),
            accessLog: AccessLogDestination(argument: accessLog), trustedProxies: trustedProxy,
            metrics: metrics.flatMap(ListenAddress.init(parsing:)), console: console.flatMap(ListenAddress.init(parsing:)),
            keepReleases: keepReleases
        )
        configuration.buildSettings = BuildSettings(
            timeout: .milliseconds(Int64(buildTimeout * 1000)), heartbeat: .milliseconds(Int64(buildHeartbeat * 1000)),
            outputLimit: (try LimitSize.parseBytes(buildOutputLimit)) ?? BuildSettings().outputLimit
        )
        if case .some(.some(let weight)) = GustdCgroup.parse(cpuWeight) { configuration.cpuWeight = weight.weight }
        configuration.https = https.flatMap(ListenAddress.init(parsing:))
        configuration.webSocketIdleTimeout = .milliseconds(Int(webSocketIdleTimeout * 1000))
        configuration.ownCertificate = tlsCert.flatMap { chain in tlsKey.map { (Self.absolute(chain), Self.absolute($0)) } }
        configuration.redirectHTTPS = redirectHttps
        if configuration.https != nil, !noAcme {
            configuration.acme = ACMESettings(directory: acmeDirectory, email: acmeEmail, caBundle: acmeCaBundle.map(Self.absolute))
        }
        configuration.onlyApp = onlyApp.flatMap { try? AppName($0) }
        configuration.reservedDomains = reservedDomains.compactMap { try? DomainName($0) }
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

    /// Paths given relative to where gustd started, made absolute before it leaves that directory.
    private static func absolute(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }

    private func printError(_ error: GustError) {
        var stderr = StandardError()
        print("gustd: \(error.message)", to: &stderr)
        if let hint = error.hint { print(hint, to: &stderr) }
    }
}

private struct StandardError: TextOutputStream {
    mutating func write(_ string: String) { FileHandle.standardError.write(Data(string.utf8)) }
}
