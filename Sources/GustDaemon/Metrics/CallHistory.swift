import Foundation
import GustCore
import Synchronization

/// Calls and errors per app per minute, for the last hour, kept in memory for
/// the console's overview and sparklines (counted whether or not `--metrics`
/// is on; a restart starts it afresh). Only apps with a live release are
/// counted, so its size stays bounded by the apps gustd serves.
final class CallHistory: Sendable {
    static let minutesKept = 60

    private struct Series {
        /// Minute number (seconds since 1970 / 60) → (calls, errors).
        var minutes: [Int: (calls: Int, errors: Int)] = [:]
    }

    private let series = Mutex<[AppName: Series]>([:])

    /// Counts a call that ended with `status` (5xx counts as an error).
    func record(_ app: AppName, status: Int, at now: Date = Date()) {
        let minute = Self.minute(of: now)
        series.withLock { all in
            // In place: no copy of the app's minutes on the call path.
            all[app, default: Series()].minutes[minute, default: (0, 0)].calls += 1
            if status >= 500 { all[app, default: Series()].minutes[minute, default: (0, 0)].errors += 1 }
            if all[app]!.minutes.count > Self.minutesKept {
                all[app]!.minutes = all[app]!.minutes.filter { $0.key > minute - Self.minutesKept }
            }
        }
    }

    /// The last `count` minutes, oldest first, this one last; minutes without calls are zeros.
    func minutes(_ app: AppName, count: Int, at now: Date = Date()) -> [(calls: Int, errors: Int)] {
        let minute = Self.minute(of: now)
        let entry = series.withLock { $0[app] } ?? Series()
        return ((minute - count + 1)...minute).map { entry.minutes[$0] ?? (0, 0) }
    }

    func forget(_ app: AppName) {
        _ = series.withLock { $0.removeValue(forKey: app) }
    }

    private static func minute(of date: Date) -> Int { Int(date.timeIntervalSince1970 / 60) }
}
