public import GustBuild

/// Which launcher gustd runs instances with (`gustd --sandbox`), decided once at start.
public enum SandboxChoice: String, Sendable, CaseIterable {
    case bubblewrap, none

    /// bubblewrap where it works, else none (said at start, with the reason).
    public static func resolve(_ requested: SandboxChoice?) throws -> (sandbox: Sandbox?, description: String) {
        let reason = Sandbox.unavailableReason()
        switch requested {
        case .none?:
            return (nil, "sandbox: none (--sandbox none): instances run as gustd's own user and see what it sees")
        case .bubblewrap?, nil:
            if let reason {
                if requested == .bubblewrap { throw SandboxError("--sandbox bubblewrap: \(reason).") }
                return (nil, "sandbox: none, because \(reason); instances run as gustd's own user (install bubblewrap)")
            }
            let identity = SandboxIdentity.current()
            let sandbox = Sandbox(identity: identity)
            let who = identity.range.map {
                "each app as its own uid from \($0.uidStart) (gustd's subordinate range of \($0.count))"
            } ?? "every app as gustd's uid (no subordinate uid range for this user in /etc/subuid and /etc/subgid)"
            return (sandbox, "sandbox: bubblewrap, \(who)")
        }
    }
}
