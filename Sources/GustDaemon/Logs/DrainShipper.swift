import Foundation
import GustCore
import Logging
import NIOPosix

/// Forwards one drain's app log to its receiver, for as long as the drain exists.
///
/// The app's log file is the buffer: the shipper reads it from a stored cursor, sends what it
/// finds in batches, and moves the cursor only once a batch is delivered. A receiver that is
/// down costs nothing but a retry with backoff (1 s doubling to 60 s); a restart of gustd goes
/// on from the cursor. Lines are lost only when the log's retention rotates them away before
/// the receiver comes back: the next batch then starts with a note saying which span is missing.
struct DrainShipper: Sendable {
    let drain: Drain
    let log: AppLog
    let home: GustHome
    let policy: DrainAddressPolicy
    let logger: Logger
    var poll: Duration = .milliseconds(200)
    var batchBytes = 256 * 1024

    func run() async {
        let delivery = DrainDelivery(drain: drain, policy: policy)
        var state = DrainState.load(home: home, id: drain.id) ?? DrainState()
        if state.cursor == nil {
            // A new drain forwards what is written from now on, as Heroku's do.
            state.cursor = log.endCursor()
            try? state.save(home: home, id: drain.id)
        }
        var backoff: Duration = .seconds(1)
        while !Task.isCancelled {
            let cursor = state.cursor ?? log.endCursor()
            let batch = await read(after: cursor)
            guard !batch.entries.isEmpty || batch.skipped else {
                try? await Task.sleep(for: poll)
                continue
            }
            var entries = batch.entries
            if batch.skipped {
                entries.insert(gapNote(since: state.lastLineTime, until: entries.first?.time), at: 0)
            }
            do {
                try await delivery.send(entries)
                state.cursor = batch.cursor
                state.delivered += batch.entries.count
                state.lastLineTime = batch.entries.last?.time ?? state.lastLineTime
                state.lastDelivery = Date()
                if batch.skipped { state.gaps += 1 }
                if state.failingSince != nil {
                    logger.notice("Drain \(drain.id) of \(drain.app) delivers again to \(drain.target)")
                    state.failingSince = nil
                    state.lastError = nil
                }
                backoff = .seconds(1)
                try? state.save(home: home, id: drain.id)
            } catch {
                let reason = "\(error)"
                if state.lastError != reason {
                    logger.warning("Drain \(drain.id) of \(drain.app) to \(drain.target): \(reason); retrying with backoff")
                }
                state.lastError = reason
                state.failingSince = state.failingSince ?? Date()
                try? state.save(home: home, id: drain.id)
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(60))
            }
        }
        await delivery.close()
    }

    private func read(after cursor: LogCursor) async -> LogBatch {
        let (log, limit) = (log, batchBytes)
        return (try? await NIOThreadPool.singleton.runIfActive { log.read(after: cursor, maxBytes: limit) })
            ?? LogBatch(entries: [], cursor: cursor, skipped: false)
    }

    /// The line a receiver gets where lines were lost, naming the span they were written in.
    private func gapNote(since: Date?, until: Date?) -> LogEntry {
        let span = [since.map { "after \(LogEntry.timeText($0))" }, until.map { "before \(LogEntry.timeText($0))" }]
            .compactMap { $0 }.joined(separator: " and ")
        let retention = log.retention
        return LogEntry(
            time: until ?? Date(), release: nil, instance: nil, stream: "gustd", function: nil,
            line: "Drain \(drain.id): log lines written \(span.isEmpty ? "meanwhile" : span) were dropped: the receiver was unreachable "
                + "while the log rotated past them (gustd keeps \(retention.files + 1) files of \(ByteCount(retention.maxBytes)) per app)"
        )
    }
}
