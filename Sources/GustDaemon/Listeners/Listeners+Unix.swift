#if canImport(Glibc)
import Glibc
#endif
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle

extension Listeners {
    /// One of gustd's Unix-domain listeners (`admin socket`: the admin API on GUST_HOME/run/gustd.sock;
    /// `records channel`: GUST_HOME/run/records.sock), bound at `path` with `mode` and served as
    /// `serve` serves a TCP one (the same responder, over `SocketServer`), counted in the same
    /// `ConnectionBudget`: clients on these sockets cannot take gustd's descriptor reserve either.
    /// With `limitsPeers`, one peer uid (one app's instances) holds at most its share of the budget
    /// (`PeerConnectionLimit`). Not registered for the handover nor for `ListenersFirst`: the next
    /// gustd binds its own once this one has exited, and these drain with the service group, after
    /// the supervisor (whose calls in flight may still use the records channel).
    /// `http1`: the records channel's closes idle and slow connections (`closingIdle`), as any app's
    /// code can open them; the admin socket's (gustd's user only) keeps a build's stream open, which
    /// may be silent for minutes.
    func serveUnix<Responder: HTTPResponder>(
        _ name: String, path: String, mode: mode_t, responder: Responder, limitsPeers: Bool = false,
        http1: HTTP1Channel.Configuration = .init(), logger: Logger,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void
    ) throws -> any Service where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
        let socket = try ListeningSocket.unix(name, path: path, mode: mode)
        let peerLimit = limitsPeers ? PeerConnectionLimit(name: name, budget: connectionBudget, logger: logger) : nil
        let channel = PersistentHTTP1Channel(
            http1: HTTP1Channel(
                responder: Self.respond(responder, dates: HTTPDate(), serverName: "gustd", logger: logger), configuration: http1))
        return SocketServer(
            childChannel: channel, socket: socket, budget: connectionBudget, peerLimit: peerLimit, logger: logger,
            onServerRunning: onServerRunning)
    }
}
