import GustCore
import Synchronization

/// The bytes of record pages answered to an app's clients and not yet read by them, bounded per
/// app. A page (up to about 5 MiB of JSON) is held by gustd until its client has taken it: a
/// client that asks and never reads (an app's code on the records channel, or anyone with the
/// app's token on the gateway, over as many connections as its share allows) held hundreds of
/// megabytes of gustd's memory, for every tenant's loss. Past `limit`, the app's next page is
/// refused (429) until its clients read what they asked for: a hostile client holds up its own
/// app only.
final class UnreadPages: Sendable {
    /// Each app's bytes held, at most: six of the largest pages.
    static let defaultLimit = 32 << 20

    let limit: Int
    private let held = Mutex<[AppName: Int]>([:])

    init(limit: Int = defaultLimit) {
        self.limit = limit
    }

    /// A page of `bytes` for `app`, held until the returned hold is gone (its response written and
    /// dropped); nil when the app's unread pages would pass `limit`. A page larger than the whole
    /// limit is taken while nothing else of the app's is held, so that it can be read at all.
    func hold(_ bytes: Int, for app: AppName) -> Hold? {
        let taken = held.withLock { held in
            let now = held[app, default: 0]
            guard now == 0 || now + bytes <= limit else { return false }
            held[app] = now + bytes
            return true
        }
        return taken ? Hold(pages: self, app: app, bytes: bytes) : nil
    }

    /// Whether `app` holds all it may: its next page would be refused whatever its size, so it
    /// is refused before its query runs and its page is made.
    func isFull(_ app: AppName) -> Bool { bytes(of: app) >= limit }

    /// The bytes of `app`'s pages held now.
    func bytes(of app: AppName) -> Int { held.withLock { $0[app, default: 0] } }

    fileprivate func release(_ bytes: Int, of app: AppName) {
        held.withLock { held in
            let left = held[app, default: 0] - bytes
            held[app] = left > 0 ? left : nil
        }
    }

    /// One page's bytes, given back when the last reference to it goes (a response's body closure
    /// holds it with the page, so the count follows the memory, whether the body was written,
    /// failed or never started).
    final class Hold: Sendable {
        private let pages: UnreadPages
        private let app: AppName
        private let bytes: Int

        fileprivate init(pages: UnreadPages, app: AppName, bytes: Int) {
            self.pages = pages
            self.app = app
            self.bytes = bytes
        }

        deinit { pages.release(bytes, of: app) }
    }

    func refusal(_ app: AppName) -> GustError {
        GustError(
            "\(app)'s clients have \(ByteCount(bytes(of: app))) of record pages still to read (at most \(ByteCount(limit))); "
                + "this page was not made. Read the answers asked for before asking for more.",
            code: 429
        )
    }
}
