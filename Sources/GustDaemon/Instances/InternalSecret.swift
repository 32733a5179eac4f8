import GustCore

/// The per-instance secret that guards a runtime's internal surface.
///
/// Why: the gateway refuses `/_gust/...` however it is spelt, but the runtime
/// must not depend on that (docs/runtime-protocol.md). gustd makes a fresh
/// secret for each instance and passes it in the instance's environment; the
/// runtime takes it out of its environment at start (so app code and its
/// children never see it) and answers `/_gust/...` only to requests carrying
/// it, which only gustd's `InstanceConnection` sends.
enum InternalSecret {
    /// The request header gustd sends on every internal call.
    static let header = "X-Gust-Internal"
    /// The environment variable the runtime reads it from.
    static let environmentVariable = "GUST_INTERNAL_TOKEN"

    /// 32 random bytes, lowercase hex (one `getrandom`).
    static func make() -> String {
        RandomToken.hex(bytes: 32)
    }
}
