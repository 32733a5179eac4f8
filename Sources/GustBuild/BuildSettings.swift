/// Limits of one build: gustd's configuration (`gustd --build-timeout`,
/// `--build-heartbeat`, `--build-output-limit`), since gustd runs builds. Never
/// read from a push's environment (the hook's, which a pusher's ssh session or
/// repository might reach), so nothing pushed can raise them.
public struct BuildSettings: Sendable {
    /// The whole build must finish within this; default 15 minutes.
    public var timeout: Duration
    /// After this much silence, the pusher is told that the build is alive.
    public var heartbeat: Duration
    /// Bytes a build may print; the line past them stops it (`BuildOutputBudget`).
    public var outputLimit: Int
    /// The sandbox a build's scripts run in: gustd's (`gustd --sandbox`); nil: none (`gust dev`).
    public var sandbox: Sandbox?
    /// The PATH of a build's scripts where there is no sandbox; nil: the caller's own (`gust dev`,
    /// the developer's `python3`). gustd gives `Sandbox.path`, the system's directories: the
    /// interpreter a release's environment names must be one a sandbox has, as a release built by
    /// `gustd --sandbox none` runs sandboxed once the sandbox is on (a pyenv shim first on gustd's
    /// PATH would make a venv pointing into root's home, which no sandbox sees).
    public var hostPath: String?

    public init(timeout: Duration = .seconds(15 * 60), heartbeat: Duration = .seconds(20), outputLimit: Int = 8 << 20) {
        self.timeout = timeout
        self.heartbeat = heartbeat
        self.outputLimit = outputLimit
    }

}
