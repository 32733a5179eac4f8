import Foundation
import GustCore
import GustTesting

/// A client load that runs until told to stop, in a Python process of its own
/// (real sockets, its own threads, unaffected by the test's): keep-alive
/// clients, a new connection per request, slow calls (200–500 ms) and HTTPS
/// both ways. It writes every call's outcome as JSON when it stops.
///
/// A keep-alive client whose idle connection the server closed as it sent the
/// next request (no byte of an answer came) sends it again on a new connection,
/// as HTTP clients do (RFC 9112 §9.3.1); such retries are counted apart.
/// Anything else is a failure: a refused or reset connection, a timeout, a status other than 200.
final class UpgradeLoad {
    static let script = #"""
        import http.client, json, random, socket, ssl, sys, threading, time

        port, https_port, ca, stop_file, out_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
        out, lock = open(out_file, 'w'), threading.Lock()
        STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ssl.SSLEOFError)

        def stopped():
            try:
                open(stop_file).close()
                return True
            except OSError:
                return False

        class Loopback(http.client.HTTPSConnection):
            """HTTPS to cats.gust.test (its SNI name and certificate name), connected to loopback."""
            def connect(self):
                sock = socket.create_connection(('127.0.0.1', self.port), self.timeout)
                self.sock = self._context.wrap_socket(sock, server_hostname=self.host)

        def connection(secure):
            if secure:
                return Loopback('cats.gust.test', https_port, timeout=60, context=ssl.create_default_context(cafile=ca))
            return http.client.HTTPConnection('127.0.0.1', port, timeout=60)

        def call(conn, secure, slow):
            if slow:
                body = json.dumps({'seconds': round(random.uniform(0.2, 0.5), 3)})
                path = '/_/functions/slow' if secure else '/apps/cats/_/functions/slow'
                conn.request('POST', path, body=body, headers={'Content-Type': 'application/json'})
            else:
                conn.request('GET', '/hello' if secure else '/apps/cats/hello')
            response = conn.getresponse()
            response.read()
            return response.status

        def client(kind, secure, keep_alive, slow):
            conn, used = None, False
            while not stopped():
                started, retried, status, error = time.time(), False, None, None
                try:
                    if conn is None:
                        conn, used = connection(secure), False
                    try:
                        status = call(conn, secure, slow)
                    except STALE:
                        if not used:
                            raise
                        retried = True
                        conn.close()
                        conn = connection(secure)
                        status = call(conn, secure, slow)
                    used = True
                    if not keep_alive:
                        conn.close()
                        conn = None
                except Exception as failure:
                    error = '%s: %s' % (type(failure).__name__, failure)
                    if conn is not None:
                        conn.close()
                    conn = None
                outcome = {'kind': kind, 'start': started, 'end': time.time(), 'status': status, 'error': error, 'retried': retried}
                with lock:
                    out.write(json.dumps(outcome) + '\n')
                    out.flush()
                if not slow:
                    time.sleep(0.005)

        kinds = [
            ('keepalive', False, True, False), ('keepalive', False, True, False),
            ('new-connection', False, False, False), ('new-connection', False, False, False),
            ('slow', False, False, True), ('slow', False, False, True), ('slow-keepalive', False, True, True),
            ('https-keepalive', True, True, False), ('https-new-connection', True, False, False), ('https-slow', True, False, True),
        ]
        if https_port == 0:
            kinds = [kind for kind in kinds if not kind[1]]
        threads = [threading.Thread(target=client, args=kind) for kind in kinds]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        out.close()
        """#

    struct Outcome: Decodable {
        let kind: String
        let start: Double
        let end: Double
        let status: Int?
        let error: String?
        let retried: Bool
    }

    private let process: ChildProcess
    private let stopFile: URL
    private let outFile: URL

    /// `httpsPort` 0: HTTP calls only.
    init(port: Int, httpsPort: Int = 0, ca: URL? = nil, in directory: URL) throws {
        let script = directory.appendingPathComponent("load.py")
        try Self.script.write(to: script, atomically: true, encoding: .utf8)
        stopFile = directory.appendingPathComponent("load.stop")
        outFile = directory.appendingPathComponent("load.json")
        process = try ChildProcess(
            "/usr/bin/python3", [script.path, "\(port)", "\(httpsPort)", ca?.path ?? "", stopFile.path, outFile.path],
            standardError: STDERR_FILENO
        )
    }

    deinit {
        process.send(SIGKILL)
        _ = process.wait(upTo: 10)
    }

    /// The outcomes of the calls finished so far (one JSON line each, written as they end).
    var outcomes: [Outcome] {
        let text = (try? String(contentsOf: outFile, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(Outcome.self, from: Data($0.utf8)) }
    }

    /// Waits (up to 60 s) until every kind of call has been answered 200 for a call that started after `time`.
    @discardableResult
    func waitForAnswers(startedAfter time: Double) -> Bool {
        for _ in 0..<1200 {
            let done = outcomes
            let kinds = Set(done.map(\.kind))
            if !kinds.isEmpty, kinds.allSatisfy({ kind in done.contains { $0.kind == kind && $0.start > time && $0.status == 200 } }) {
                return true
            }
            usleep(50_000)
        }
        return false
    }

    /// Tells the clients to stop, waits (bounded) for their calls in progress, and returns every outcome.
    func stop() throws -> [Outcome] {
        _ = FileManager.default.createFile(atPath: stopFile.path, contents: nil)
        guard process.wait(upTo: 60) != nil else {
            process.send(SIGKILL)
            _ = process.wait(upTo: 10)
            throw HTTPClientErrorText("the load did not stop within 60 s")
        }
        return outcomes
    }
}
