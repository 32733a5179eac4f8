import Foundation
import GustCore
import HTTPTypes
import NIOCore
import Synchronization

/// A call answered without running its function: the pool refused it (queue
/// full, a release that cannot start, gustd stopping) or its time ran out
/// while it waited. Rendered as `{"code": N, "error": …}`, with `Retry-After`
/// when waiting helps.
struct CallRefusal: Error, Sendable, Equatable {
    var status: Int
    var message: String
    var retryAfter: Duration?

    /// `Retry-After` in whole seconds (at least 1), when waiting helps.
    var headers: HTTPFields {
        var headers = HTTPFields()
        if let retryAfter { headers[.retryAfter] = String(max(Int(retryAfter.seconds.rounded(.up)), 1)) }
        return headers
    }
}

extension Supervisor {
    /// What serves an app now, read without a hop to the actor: every request asks.
    nonisolated func route(of app: AppName) -> Route? {
        routes.withLock { $0[app] }
    }

    /// Runs `body` with an instance of the app's live release, holding one of
    /// its pool's slots: waits for one (the pool grows if it may) until
    /// `deadline`, counted from the call's arrival. An instance whose call
    /// passed its limit or lost its process is discarded, not reused. A switch
    /// to a new release while the call waited moves it to the new release's pool.
    /// `watchClient`, asked only when the call must wait, gives a future that
    /// completes if its client leaves, and what to call once the call is done.
    /// `holdUntil` may give, for what `body` returned, a future until which the
    /// call keeps its slot (a streamed answer still arriving): the instance goes
    /// back to the pool when it succeeds, and is discarded if it fails.
    /// `whenDraining` may give, for such a held call, what makes it let go when the
    /// pool drains (a WebSocket's close: `Pool.whenDraining`).
    nonisolated func withInstance<T: Sendable>(
        _ app: AppName, deadline: ContinuousClock.Instant,
        watchClient: (@Sendable () async -> (gone: EventLoopFuture<Void>, done: @Sendable () -> Void)?)? = nil,
        holdUntil: ((T) -> EventLoopFuture<Void>?)? = nil,
        whenDraining: ((T) -> (@Sendable () -> Void)?)? = nil,
        _ body: (Instance) async throws -> T
    ) async throws -> T {
        for _ in 0..<3 {
            guard let route = route(of: app) else {
                if stopping.load(ordering: .relaxed) { throw Self.refusal(.stopped, app: app, version: 0) }
                throw CallRefusal(status: 503, message: "\(app) has no live release: push to deploy it.")
            }
            let lease: AppPool.Lease
            if let free = route.pool.tryAcquire() {
                lease = free
            } else {
                let client = await watchClient?()
                defer { client?.done() }
                do {
                    lease = try await route.pool.acquire(deadline: deadline, abandonWhen: client?.gone)
                } catch let failure as AppPool.Failure {
                    if failure.reason == .stopped, let now = self.route(of: app), now.pool !== route.pool { continue }
                    throw Self.refusal(failure.reason, app: app, version: route.version)
                }
            }
            do {
                let value = try await body(lease.member)
                if let held = holdUntil?(value) {
                    let pool = route.pool
                    if let letGo = whenDraining?(value) {
                        let forget = pool.whenDraining(letGo)
                        held.whenComplete { _ in forget() }
                    }
                    held.whenComplete { result in
                        switch result {
                        case .success: pool.release(lease)
                        case .failure(let error as InstanceCallError) where !error.discardsInstance: pool.release(lease)
                        case .failure: pool.discard(lease)
                        }
                    }
                    return value
                }
                finish(lease, in: route.pool)
                return value
            } catch {
                finish(lease, in: route.pool)
                throw error
            }
        }
        throw CallRefusal(status: 503, message: "\(app) was deploying; try again.", retryAfter: .seconds(1))
    }

    /// Gives the slot back, or discards the instance if a call left it broken.
    private nonisolated func finish(_ lease: AppPool.Lease, in pool: AppPool) {
        if lease.member.isBroken {
            pool.discard(lease)
        } else {
            pool.release(lease)
        }
    }

    /// The live release's manifest: known once an instance of it has started
    /// (one is started if none has, so a record write never skips a hook).
    nonisolated func manifest(of app: AppName, deadline: ContinuousClock.Instant) async throws -> (version: Int, manifest: FunctionManifest)? {
        guard let route = route(of: app) else { return nil }
        if let manifest = route.launcher.manifest { return (route.version, manifest) }
        return try await withInstance(app, deadline: deadline) { ($0.version, $0.manifest) }
    }

    static func refusal(_ reason: PoolStateMachine.Failure, app: AppName, version: Int) -> CallRefusal {
        switch reason {
        case .queueFull(let limit):
            CallRefusal(status: 503, message: "\(app) is at capacity: \(limit) calls are already waiting. Try again shortly.", retryAfter: .seconds(1))
        case .timedOut:
            CallRefusal(status: 504, message: "No instance of \(app) was free before the call's time limit.")
        case .cannotStart(let message, let retryAfter):
            CallRefusal(
                status: 503,
                message: "\(app) v\(version) is crashing: it cannot start (\(message.split(separator: "\n").first ?? "")); "
                    + "the next start is tried in \(retryAfter.shortText). See `gust logs \(app)`.",
                retryAfter: retryAfter
            )
        case .stopped:
            CallRefusal(status: 503, message: "gustd is stopping; try again shortly.", retryAfter: .seconds(1))
        case .instanceLost:
            CallRefusal(status: 503, message: "The instance given this call of \(app) had stopped; try again.", retryAfter: .seconds(1))
        }
    }
}
