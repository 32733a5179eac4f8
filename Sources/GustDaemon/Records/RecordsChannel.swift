import Foundation
import GustCore
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// The secrets gustd gives instances for the records channel: each maps to
/// one instance of one app, and lives as long as that instance. Under the sandbox with app uids
/// a secret is also bound to its app's uid: every app's instances reach the same socket (a link
/// in each one's directory), and a secret an app leaked (its environment in an error page) would
/// otherwise work from another app's code.
final class RecordsChannelTokens: Sendable {
    private struct Entry {
        var app: AppName
        /// The uid the app's processes connect as (its host uid); nil where apps run as gustd's.
        var uid: UInt32?
        var instance: Instance?
    }

    /// By each token's SHA-256 (`Store.tokenHash`, as app tokens are kept), never the token: a
    /// lookup's comparisons then say nothing, in how long they take, about a token's bytes.
    private let entries = Mutex<[String: Entry]>([:])

    /// A new secret for an instance of `app` about to start, whose processes run as `uid` (nil:
    /// gustd's): 32 random bytes, lowercase hex (one `getrandom`).
    func issue(for app: AppName, uid: UInt32? = nil) -> String {
        let token = RandomToken.hex(bytes: 32)
        let key = Store.tokenHash(token)
        entries.withLock { $0[key] = Entry(app: app, uid: uid) }
        return token
    }

    /// Ties the secret to the instance once it runs, so hooks its writes cause can go back to it.
    func attach(_ token: String, to instance: Instance) {
        let key = Store.tokenHash(token)
        entries.withLock { $0[key]?.instance = instance }
    }

    func revoke(_ token: String) {
        let key = Store.tokenHash(token)
        _ = entries.withLock { $0.removeValue(forKey: key) }
    }

    /// The app and instance of `token` sent by a peer of uid `peer`: nil for an unknown secret, and
    /// for one bound to another uid than the peer's.
    func lookup(_ token: String, peer: UInt32?) -> (app: AppName, instance: Instance?)? {
        let key = Store.tokenHash(token)
        return entries.withLock { entries in
            guard let entry = entries[key], entry.uid == nil || entry.uid == peer else { return nil }
            return (entry.app, entry.instance)
        }
    }

    /// What the table is keyed by (tests).
    var keys: [String] { entries.withLock { Array($0.keys) } }
}

/// `GUST_HOME/run/records.sock`: the records API for the app's own functions
/// (`gust.records`). A request must carry its instance's secret
/// (`Authorization: Bearer GUST_RECORDS_TOKEN`); it acts on that instance's
/// app only. `/v1/records/TYPE[/ID]` takes what `/_/records/TYPE[/ID]` takes.
struct RecordsChannel: HTTPResponder {
    /// Hummingbird's context with the request's channel, whose peer's uid a secret is checked against.
    typealias Context = GatewayContext

    let tokens: RecordsChannelTokens
    let api: RecordsAPI

    func respond(to request: Request, context: Context) async throws -> Response {
        let authorization = request.headers[.authorization] ?? ""
        let peer = authorization.hasPrefix("Bearer ") ? try? await PeerCredentials.of(context.channel).get() : nil
        guard authorization.hasPrefix("Bearer "), let caller = tokens.lookup(String(authorization.dropFirst("Bearer ".count)), peer: peer?.uid)
        else {
            return RecordsAPI.error(401, "The records channel takes requests from Gust instances only (GUST_RECORDS_TOKEN).")
        }
        let path = request.uri.path
        guard path.hasPrefix("/v1/records/") else {
            return RecordsAPI.error(404, "No endpoint \(path): use /v1/records/TYPE[/ID].")
        }
        let body: ByteBuffer
        do { body = try await RecordsAPI.collect(request.body) } catch let error as GustError {
            return RecordsAPI.error(error.code, error.message)
        }
        let context = request.headers[HTTPField.Name("X-Gust-Hook-Context")!]
        return await api.respond(
            app: caller.app, method: request.method, path: path.dropFirst("/v1/records".count), query: request.uri.query, body: body,
            caller: RecordsCaller(instance: caller.instance, context: context)
        )
    }
}
