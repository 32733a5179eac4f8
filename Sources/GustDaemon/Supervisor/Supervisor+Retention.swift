import GustCore
import Logging

extension Supervisor {
    /// `--keep-releases N`: after a switch, the app's old artifacts go as
    /// `gust releases prune APP --keep N` would remove them (the live release,
    /// the rollback target and newer releases always stay). Not under the
    /// app's deploy lock, which the deploy's caller may hold: a rollback to a
    /// release pruned meanwhile fails cleanly on its missing artifact.
    func pruneArtifacts(of app: AppName, progress: @Sendable (String) -> Void) {
        guard let keep = configuration.keepReleases else { return }
        do {
            let freed = try store.pruneArtifacts(app, keep: keep).freed
            if freed > 0 { progress("Pruned \(ByteCount(freed)) of old artifacts (--keep-releases \(keep))") }
        } catch {
            logger.warning("Cannot prune the artifacts of \(app): \(error)")
        }
    }
}
