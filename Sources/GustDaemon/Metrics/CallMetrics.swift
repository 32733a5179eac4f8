import Foundation
import GustCore
import Hummingbird
import NIOCore

/// Measures a call where it is answered, with its status however it ends
/// (an answer, a refusal, an error): one wrapper per event site.
enum CallMetrics {
    /// An op or handler call through the gateway. The function label is read
    /// from the manifest once the call is over, when an instance has said it.
    /// `history` is the console's (nil without `--console`): one clock read feeds both.
    static func measure(
        _ app: AppName, kind: CallKind, function: @escaping @Sendable () -> String, history: CallHistory?,
        isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> Response
    ) async throws -> Response {
        guard GustMetrics.isEnabled || history != nil else { return try await body() }
        let began = ContinuousClock.now
        do {
            let response = try await body()
            record(app, kind: kind, function: function, status: response.status.code, duration: .now - began, history: history)
            return response
        } catch {
            record(app, kind: kind, function: function, status: status(of: error), duration: .now - began, history: history)
            throw error
        }
    }

    /// One call, counted once for both its readers: the console's minute-by-minute history and
    /// the Prometheus counters and timer (each only when on).
    /// The function label is worked out once, for both.
    static func record(
        _ app: AppName, kind: CallKind, function: () -> String, status: Int, duration: Duration, history: CallHistory?
    ) {
        guard GustMetrics.isEnabled || history != nil else { return }
        let label = function()
        history?.record(app, function: .init(kind: kind, name: label), status: status, duration: duration)
        if GustMetrics.isEnabled { GustMetrics.call(app, kind: kind, function: label, status: status, duration: duration) }
    }

    /// A record hook run for a write: `function` is `EVENT TYPE`, as the manifest declares it
    /// (only declared hooks are called). A failure is also a hook failure.
    static func measureHook<T>(
        _ app: AppName, event: String, type: String, history: CallHistory?, isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> T
    ) async throws -> T {
        guard GustMetrics.isEnabled || history != nil else { return try await body() }
        let began = ContinuousClock.now
        let function = "\(event) \(type)"
        do {
            let value = try await body()
            record(app, kind: .hook, function: { function }, status: 200, duration: .now - began, history: history)
            return value
        } catch {
            record(app, kind: .hook, function: { function }, status: status(of: error), duration: .now - began, history: history)
            GustMetrics.hookFailed(app, hook: function)
            throw error
        }
    }

    /// A record write (save or delete) and whether it stood.
    static func measureWrite<T>(
        _ app: AppName, operation: String, isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> T
    ) async throws -> T {
        do {
            let value = try await body()
            GustMetrics.recordWrite(app, operation: operation, succeeded: true)
            return value
        } catch {
            GustMetrics.recordWrite(app, operation: operation, succeeded: false)
            throw error
        }
    }

    /// A schedule run: its outcome and, as a call, its status class.
    static func scheduleRun(_ app: AppName, schedule: String, failed: Bool, duration: Duration, history: CallHistory?) {
        GustMetrics.scheduleRun(app, schedule: schedule, outcome: failed ? .error : .ok)
        record(app, kind: .schedule, function: { schedule }, status: failed ? 500 : 200, duration: duration, history: history)
    }

    /// The status the gateway answers for an error a call threw.
    static func status(of error: any Error) -> Int {
        switch error {
        case let error as GustError: error.code
        case let refusal as CallRefusal: refusal.status
        case is NIOTooManyBytesError: 413
        default: 500
        }
    }
}
