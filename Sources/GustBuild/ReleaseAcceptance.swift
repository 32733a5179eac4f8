public import GustCore
public import GustGit

/// Makes an app's releases agree with its repository after a hand-off was cut
/// short (gustd or a hook killed, another hook refusing the ref).
///
/// Why: a push's release may serve only once git has accepted the push. A
/// release is recorded `built` before git decides; if git never wrote the ref,
/// that release must never serve, and if git did but nobody switched to it,
/// the repository says what should be live. The rule, for every `built`
/// release newer than the live one, newest first:
///
/// - its commit is the tip of a deploy branch, and it is the newest such: it
///   was accepted and never switched to, so it becomes live;
/// - its commit is not reachable from any deploy branch: git never accepted
///   its push, so it is marked failed (abandoned);
/// - otherwise (accepted, then superseded by a newer push): left as built.
///
/// The live release is never touched.
public enum ReleaseAcceptance {
    public struct Outcome: Sendable, Equatable {
        /// The release made live, if any.
        public var promoted: Int?
        /// The releases marked failed.
        public var abandoned: [Int] = []
    }

    public static let abandonedMessage = "Abandoned: git never accepted the push of this release (the hand-off to gustd was cut short, or another hook refused the ref), so it never served."

    public static func converge(_ app: AppName, store: Store, repository: GitRepository) throws -> Outcome {
        let live = try store.app(app)?.liveVersion ?? 0
        let tips = RefUpdate.deployBranches.compactMap { try? repository.resolve(reference: $0) }
        var outcome = Outcome()
        for release in try store.releases(app) where release.version > live && release.status == .built {
            guard let commit = release.commit else { continue }
            if outcome.promoted == nil && tips.contains(commit) {
                outcome.promoted = release.version
            } else if !tips.contains(where: { repository.isReachable(commit, from: $0) }) {
                if try store.markFailed(app, version: release.version, error: abandonedMessage, appendingLog: "\n" + abandonedMessage + "\n") {
                    outcome.abandoned.append(release.version)
                }
            }
        }
        if let promoted = outcome.promoted { try store.setLive(app, version: promoted) }
        return outcome
    }
}
