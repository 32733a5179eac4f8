import Foundation
import ServiceLifecycle
import Synchronization

/// Notes every served app's instances in the console's `CallHistory` every few
/// seconds, for its "instances over time" chart: a quiet app's warm instances
/// show even in minutes without calls. Runs only with `--console`, as one
/// service of gustd's group, and stops with it.
struct CallHistorySampler: Service {
    let supervisor: Supervisor
    static let interval: Duration = .seconds(5)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                sampleNow()
                try? await Task.sleep(for: Self.interval)
            }
        }
    }

    func sampleNow() {
        let pools = supervisor.routes.withLock { $0.mapValues(\.pool) }
        for (app, pool) in pools {
            let counts = pool.snapshot.counts
            supervisor.callHistory.sample(app, starting: counts.starting, idle: counts.idle, busy: counts.busy)
        }
    }
}
