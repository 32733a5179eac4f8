import Foundation
import GustCore
import Logging
import NIOPosix
import ServiceLifecycle

/// gustd's keeper of app logs beyond writing them: applies the retention's age (`--log-max-age`)
/// to every app's log about once a minute, and runs a `DrainShipper` for each drain in the store,
/// starting and stopping them as `gust drains add/remove` change it (read every second: the store
/// is the one source, so there is no second copy of the list to keep in step). On shutdown the
/// shippers stop where they are; their cursors say where to go on.
struct LogService: Service {
    let configuration: RouterConfiguration
    let logger: Logger
    var reconcileEvery: Duration = .seconds(1)
    var expireEvery: Duration = .seconds(60)

    func run() async throws {
        let store = try StoreAccess(home: configuration.home)
        let policy = DrainAddressPolicy.current()
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                var running: [String: Drain] = [:]
                var stops: [String: AsyncStream<Void>.Continuation] = [:]
                var lastExpiry = ContinuousClock.now - expireEvery
                while !Task.isCancelled {
                    if let drains = try? await store.run({ try $0.drains() }) {
                        let wanted = Dictionary(drains.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
                        for (id, stop) in stops where wanted[id] == nil || wanted[id] != running[id] {
                            stop.finish()
                            stops[id] = nil
                            running[id] = nil
                            if wanted[id] == nil { try? FileManager.default.removeItem(at: DrainState.url(home: configuration.home, id: id)) }
                        }
                        for (id, drain) in wanted where running[id] == nil {
                            let (stopped, stop) = AsyncStream<Void>.makeStream()
                            running[id] = drain
                            stops[id] = stop
                            let shipper = DrainShipper(
                                drain: drain, log: configuration.appLog(drain.app), home: configuration.home, policy: policy, logger: logger)
                            group.addTask {
                                // Runs until its drain is removed (its stream ends) or gustd stops.
                                await withTaskGroup(of: Void.self) { inner in
                                    inner.addTask { await shipper.run() }
                                    inner.addTask { for await _ in stopped {} }
                                    await inner.next()
                                    inner.cancelAll()
                                }
                            }
                        }
                    }
                    if ContinuousClock.now - lastExpiry >= expireEvery, let apps = try? await store.run({ try $0.apps().map(\.name) }) {
                        lastExpiry = .now
                        await expireLogs(apps)
                    }
                    try? await Task.sleep(for: reconcileEvery)
                }
                for stop in stops.values { stop.finish() }
                group.cancelAll()
            }
        }
    }

    /// `--log-max-age` and a lowered `--log-files`, applied to every app's log on the thread pool.
    private func expireLogs(_ apps: [AppName]) async {
        let configuration = configuration
        _ = try? await NIOThreadPool.singleton.runIfActive {
            for app in apps { try? configuration.appLog(app).expire() }
        }
    }
}
