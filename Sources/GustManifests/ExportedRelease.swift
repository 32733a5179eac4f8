public import GustCore

/// Everything the manifests are made from: one release of one app, as the
/// store knows it, plus where its image is and where it goes.
///
/// Why a value of its own: the generator is pure (tests build one of these by
/// hand with hostile values), and the CLI is the only place that reads the store.
public struct ExportedRelease: Sendable {
    public var app: AppName
    public var version: Int
    /// The image reference the cluster pulls: `--image`, else `defaultImage`.
    public var image: String
    /// `--namespace`, already checked as a label; nil leaves it to `kubectl -n`.
    public var namespace: String?
    public var scale: ScaleSettings
    /// Calls one instance takes at once: `scale.concurrency` for Node, 1 for Python (its instances take one).
    public var concurrencyPerInstance: Int
    /// The limits in force for the app's instances (its own over gustd's defaults).
    public var limits: AppLimits
    /// The release's config vars that are not secret, by name.
    public var config: [String: String]
    /// The names of the release's secret config vars: their values stay on the Gust server.
    public var secretNames: [String]
    /// The app's schedules, when they are this release's; empty otherwise.
    public var schedules: [StoredSchedule]
    /// Why `schedules` is empty although the app has some (they belong to another release), or nil.
    public var schedulesNote: String?
    /// `--records-url`: the Gust server's address for `gust.records`, or nil to leave the record store out.
    public var recordsURL: String?

    public init(
        app: AppName, version: Int, image: String? = nil, namespace: String? = nil, scale: ScaleSettings = .standard,
        concurrencyPerInstance: Int? = nil, limits: AppLimits = AppLimits(), config: [String: String] = [:],
        secretNames: [String] = [], schedules: [StoredSchedule] = [], schedulesNote: String? = nil, recordsURL: String? = nil
    ) {
        self.app = app
        self.version = version
        self.image = image ?? Self.defaultImage(app: app, version: version)
        self.namespace = namespace
        self.scale = scale
        self.concurrencyPerInstance = concurrencyPerInstance ?? scale.concurrency
        self.limits = limits
        self.config = config
        self.secretNames = secretNames
        self.schedules = schedules
        self.schedulesNote = schedulesNote
        self.recordsURL = recordsURL
    }

    /// `localhost/gust/APP:vN`: the name `podman`/`skopeo` give the exported image
    /// locally. `localhost/` never resolves to a public registry, so a cluster that
    /// was not told `--image` fails to pull rather than pulling someone else's image.
    public static func defaultImage(app: AppName, version: Int) -> String {
        "localhost/gust/\(app):v\(version)"
    }

    /// The container's port, as the image's contract says (`$PORT`, 8080 by default).
    public static let port = 8080
    /// The path every Gust instance answers its health on.
    public static let healthPath = "/_/health"
    /// The Secret key the records token is read from.
    public static let recordsTokenKey = "GUST_RECORDS_TOKEN"
}
