#if canImport(Glibc)
import Glibc
#endif
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOHTTP1
import NIOCore
import NIOSSL
import ServiceLifecycle
import Synchronization

extension Listeners {
    /// One of gustd's HTTP listeners, served from the socket called `name` (inherited,
    /// else bound to `host:port`) and registered for the handover and the drain:
    /// Hummingbird's `Application` as it answers a request (the responder, `Date` and
    /// `Server` headers), over `SocketServer`. With `lane`, the gateway answers what it
    /// can from a request's head on the event loop (`GatewayLane`).
    func serve<Responder: HTTPResponder>(
        _ name: String, host: String, port: Int, responder: Responder, http1: HTTP1Channel.Configuration = .init(),
        tls: TLSConfiguration? = nil, serverName: String = "gustd", lane: Gateway? = nil, logger: Logger,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void
    ) throws -> any Service where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
        let socket = try socket(name, host: host, port: port)
        let onServerRunning: @Sendable (any Channel) async -> Void = { channel in
            if socket.inherited {
                let given = channel.localAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
                if port == 0 || channel.localAddress?.port == port {
                    logger.notice("gustd's \(name) listener serves the socket it was given (\(given))")
                } else {
                    logger.warning("gustd's \(name) listener serves the socket it was given (\(given)), not \(host):\(port): make the socket unit's ListenStream= and gustd's option the same")
                }
            }
            await onServerRunning(channel)
        }
        let dates = HTTPDate()
        let respond = Self.respond(responder, dates: dates, serverName: serverName, logger: logger)
        var http1 = http1
        // gustd's own idle timer instead of HummingbirdCore's: it also counts what `PlainLane` answers.
        let idleTimeout = http1.idleTimeout
        http1.idleTimeout = nil
        http1.additionalChannelHandlers = { [handlers = http1.additionalChannelHandlers] in
            handlers() + [QuiesceGate()] + (idleTimeout.map { [IdleConnectionTimer(timeout: $0)] } ?? [])
        }
        let channel = PersistentHTTP1Channel(http1: HTTP1Channel(responder: respond, configuration: http1))
        func serve<Child: ServerChildChannel>(_ child: Child) throws -> any Service {
            let server: any Service & DrainableServer = if let tls {
                SocketServer(
                    childChannel: try TLSChannel(child, tlsConfiguration: tls), socket: socket, budget: connectionBudget,
                    peerLimit: addressLimit, logger: logger, onServerRunning: onServerRunning)
            } else {
                SocketServer(
                    childChannel: child, socket: socket, budget: connectionBudget, peerLimit: addressLimit, logger: logger,
                    onServerRunning: onServerRunning)
            }
            add(socket, served: server)
            return server
        }
        if let lane {
            return try serve(GatewayChannel(http1: channel, gateway: lane, dates: dates, serverName: serverName))
        }
        return try serve(channel)
    }

    /// What `Application.run` gives `HTTP1Channel`.
    /// Less its per-request logger: a copy with a request id in its metadata, in a task local, cost a
    /// call more than it gave (gustd's own `X-Request-Id` names a call in its access log line).
    static func respond<Responder: HTTPResponder>(
        _ responder: Responder, dates: HTTPDate, serverName: String, logger: Logger
    ) -> HTTPChannelHandler.Responder where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
        { request, writer, channel in
            let context = Responder.Context(source: .init(channel: channel, logger: logger))
            var response: Response
            do {
                response = try await responder.respond(to: request, context: context)
            } catch let error as HTTPParserError {
                throw error
            } catch {
                logger.debug("Unrecognised Error", metadata: ["error.type": "\(error)"])
                response = Response(status: .internalServerError, body: .init())
            }
            response.headers[.date] = dates.now
            response.headers[.server] = serverName
            do {
                try await writer.write(response: response.head, body: response.body)
            } catch is HTTPParserError {
                throw ResponseAbandoned()  // not the parser error, which would make the channel write a second response
            }
        }
    }
}

/// A response that could not be written; the connection is closed.
private struct ResponseAbandoned: Error {}

/// The `Date` header's value, formatted once a second (RFC 9110's IMF-fixdate).
final class HTTPDate: Sendable {
    private let cache = Mutex<(second: time_t, text: String)>((0, ""))

    var now: String {
        let second = time(nil)
        return cache.withLock { cache in
            if cache.second != second { cache = (second, Self.format(second)) }
            return cache.text
        }
    }

    static func format(_ second: time_t) -> String {
        var clock = second
        var parts = tm()
        gmtime_r(&clock, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
