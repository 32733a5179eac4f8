public import GustBuild
public import GustCore
import Foundation

/// How gustd runs: `gustd --help` documents each of these.
public struct RouterConfiguration: Sendable {
    public var home: GustHome
    public var httpHost: String
    public var httpPort: Int
    /// Apps answer at `APP.DOMAIN`.
    public var domain: String
    /// Default limit of one op or handler call; past it the caller gets 504 and the instance is replaced.
    public var functionTimeout: Duration
    /// How long a new instance may take to answer its manifest.
    public var startTimeout: Duration
    /// How long a replaced instance gets to finish its requests after SIGTERM.
    public var stopGrace: Duration
    /// Largest request body gustd accepts.
    public var maxBodyBytes: Int
    /// Calls that may wait for an app's instances; past it, 503 with Retry-After.
    public var queueLimit: Int
    /// How long a client connection may stay open with no request in progress.
    public var idleTimeout: Duration
    /// How long a new connection may take to send its first whole request head.
    public var headerTimeout: Duration
    /// How long a WebSocket may carry nothing either way before gustd closes it (1001).
    public var webSocketIdleTimeout: Duration = .seconds(300)
    /// The sandbox instances run in (`gustd --sandbox`); nil runs them as gustd's own user.
    public var sandbox: Sandbox?
    /// A push's build's time, keep-alive and output limits (`--build-timeout`, `--build-heartbeat`,
    /// `--build-output-limit`); its sandbox is `sandbox`.
    public var buildSettings = BuildSettings()
    /// Limits of an app that `gust limits` did not set (`gustd --memory-limit` …).
    public var limitDefaults: AppLimits
    /// gustd's cgroup, under each cgroup hierarchy: instances get `ROOT/APP/ID`.
    public var cgroupRoot: String
    /// Where the cgroup hierarchies are mounted.
    public var cgroupMount: String
    /// Whether instances are confined at all (tests of unrelated parts may run without).
    public var enforcesLimits: Bool
    /// gustd's own CPU weight (`--cpu-weight`, cgroup v2 units), in a cgroup of its own beside
    /// `cgroupRoot`'s tree (`GustdCgroup`); nil leaves gustd in the cgroup it started in.
    public var cpuWeight: Int?
    /// Bytes of output per second an app's instances may log together; past it lines are dropped (and counted).
    public var logBytesPerSecond: Int
    /// How much of each app's log is kept on disk, and for how long (`--log-max`, `--log-files`, `--log-max-age`).
    public var logRetention: LogRetention
    /// Where the access log goes (a line per call, `AccessLog`).
    public var accessLog: AccessLogDestination
    /// Peers whose `X-Forwarded-For` and `X-Forwarded-Proto` gustd believes (`ForwardedHeaders`).
    public var trustedProxies: [String]
    /// Where `GET /metrics` is served (`--metrics`); nil: no metrics, and nothing counted.
    public var metrics: ListenAddress?
    /// Where the web console is served (`--console`); nil: no console.
    public var console: ListenAddress?
    /// Releases whose artifacts a deploy keeps besides the live one and the rollback target (`--keep-releases`); nil keeps all.
    public var keepReleases: Int?
    /// Where HTTPS is served (`--https`); nil: HTTP only.
    public var https: ListenAddress?
    /// `--tls-cert`/`--tls-key`: the operator's own certificate (a wildcard for `*.DOMAIN`, say),
    /// served for every name gustd has no certificate of its own for.
    public var ownCertificate: (chain: String, key: String)?
    /// `--redirect-https`: HTTP requests for apps' names get 301 to HTTPS.
    public var redirectHTTPS: Bool = false
    /// Certificates for the apps' own domains by ACME (with `--https`); nil: none are requested.
    public var acme: ACMESettings?
    /// The one app every request goes to, whatever its host or path (`--only-app`: what `gust dev` runs); nil routes by host or `/apps/APP/`.
    public var onlyApp: AppName?
    /// `--reserve-domain`: the server's own names, which no app may add as its domain (nor names under them).
    public var reservedDomains: [DomainName] = []

    public init(
        home: GustHome, httpHost: String = "127.0.0.1", httpPort: Int = 8080, domain: String = "localhost",
        functionTimeout: Duration = .seconds(15), startTimeout: Duration = .seconds(30),
        stopGrace: Duration = .seconds(3), maxBodyBytes: Int = 10 * 1024 * 1024, queueLimit: Int = 100,
        idleTimeout: Duration = .seconds(60), headerTimeout: Duration = .seconds(10), sandbox: Sandbox? = nil,
        limitDefaults: AppLimits = .standard, cgroupRoot: String = "gust", cgroupMount: String = "/sys/fs/cgroup",
        enforcesLimits: Bool = true, logBytesPerSecond: Int = 1 << 20, logRetention: LogRetention = .default,
        accessLog: AccessLogDestination = .off, trustedProxies: [String] = [],
        metrics: ListenAddress? = nil, console: ListenAddress? = nil,
        keepReleases: Int? = nil
    ) {
        self.sandbox = sandbox
        self.limitDefaults = limitDefaults
        self.cgroupRoot = cgroupRoot
        self.cgroupMount = cgroupMount
        self.enforcesLimits = enforcesLimits
        self.logBytesPerSecond = logBytesPerSecond
        self.logRetention = logRetention
        self.accessLog = accessLog
        self.trustedProxies = trustedProxies
        self.metrics = metrics
        self.console = console
        self.keepReleases = keepReleases
        self.queueLimit = queueLimit
        self.home = home
        self.httpHost = httpHost
        self.httpPort = httpPort
        self.domain = domain
        self.functionTimeout = functionTimeout
        self.startTimeout = startTimeout
        self.stopGrace = stopGrace
        self.maxBodyBytes = maxBodyBytes
        self.idleTimeout = idleTimeout
        self.headerTimeout = headerTimeout
    }

    /// An app's log as this gustd keeps it: every writer goes through here, so all honour one retention.
    public func appLog(_ app: AppName) -> AppLog {
        AppLog(home: home, app: app, retention: logRetention)
    }
}

/// Where gustd writes its access log: nowhere, its stdout, or a file it appends to.
public enum AccessLogDestination: Sendable, Equatable {
    case off
    case standardOutput
    case file(String)

    /// `off`, `-` (stdout) or a path.
    public init(argument: String) {
        switch argument {
        case "off", "none": self = .off
        case "-", "stdout": self = .standardOutput
        // Absolute now: gustd leaves the directory it was started in (see Gustd.run).
        default: self = .file(URL(fileURLWithPath: argument).standardizedFileURL.path)
        }
    }
}

/// A host and port to listen on.
public struct ListenAddress: Sendable, Equatable {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `HOST:PORT` (`[::1]:9090` too), or nil.
    public init?(parsing text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        let host = String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        guard !host.isEmpty else { return nil }
        self.init(host: host, port: port)
    }
}

/// The ACME certificate authority gustd gets certificates from (`--acme-*`).
public struct ACMESettings: Sendable, Equatable {
    public static let letsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

    /// The CA's directory URL.
    public var directory: String
    /// The account's contact (the CA writes about expiring certificates and policy changes).
    public var email: String?
    /// PEM roots to trust for the directory's HTTPS instead of the system's (a test CA such as pebble).
    public var caBundle: String?

    public init(directory: String = ACMESettings.letsEncrypt, email: String? = nil, caBundle: String? = nil) {
        self.directory = directory
        self.email = email
        self.caBundle = caBundle
    }
}
