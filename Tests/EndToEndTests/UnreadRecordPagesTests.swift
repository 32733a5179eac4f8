import Foundation
import GustCore
import GustTesting
import Testing

/// A record page waits in gustd until its client reads it. An app's code that asks for pages on
/// the records channel and never reads them (or a client with the app's token on the gateway)
/// held every one of them, megabytes each, in gustd's memory; now the app's next page is refused
/// once its unread pages pass 32 MiB, and served again once they are read or dropped.
@Suite(.timeLimit(.minutes(10)))
struct UnreadRecordPagesTests {
    static let app = """
        import os
        import socket
        import time

        import gust

        held = []

        @gust.op('fill')
        def fill():
            for n in range(6):
                gust.records.save('big', {'n': n, 'text': 'x' * 900_000})
            return 'filled'

        @gust.op('hoard')
        def hoard(count):
            # One page asked for per connection, its status line read and nothing after it.
            request = ('GET /v1/records/big HTTP/1.1\\r\\nHost: gustd\\r\\n'
                       f'Authorization: Bearer {os.environ["GUST_RECORDS_TOKEN"]}\\r\\n\\r\\n').encode()
            statuses = []
            for _ in range(count):
                connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                connection.connect(os.environ['GUST_RECORDS_SOCKET'])
                connection.sendall(request)
                statuses.append(connection.recv(12).decode())
                held.append(connection)
            return statuses

        @gust.op('drop')
        def drop():
            while held:
                held.pop().close()
            for _ in range(100):  # gustd lets a page go once it sees its connection closed
                try:
                    return len(gust.records.find('big'))
                except gust.Error as error:
                    if error.code != 429:
                        raise
                    time.sleep(0.1)
            return 'still refused'
        """

    @Test(.scratchDirectory) func anAppsUnreadPagesAreBoundedAndItsReadsGoOnOnceTheyAreRead() throws {
        let fixture = try PushFixture(gustdArguments: ["--function-timeout", "120"])
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app)
        try work.commit("Hoards record pages")
        let pushed = try work.push(to: fixture.remote)
        #expect(pushed.status == 0, "\(pushed.output)")
        func call(_ op: String, _ body: String = "{}") throws -> HTTPResult {
            try HTTPClient.request(port: fixture.port, "POST", "/apps/cats/_/functions/\(op)", body: body, timeout: 120)
        }
        #expect(try call("fill").status == 200)
        let hoard = try call("hoard", #"{"count": 30}"#)
        #expect(hoard.status == 200, "\(hoard.text)")
        let statuses = (try? JSONSerialization.jsonObject(with: Data(hoard.text.utf8))) as? [String] ?? []
        let served = statuses.filter { $0 == "HTTP/1.1 200" }.count
        let refused = statuses.filter { $0 == "HTTP/1.1 429" }.count
        // A page is about 3.6 MB (four records: the first and what fits in 4 MiB more): 32 MiB holds eight or nine.
        print("unread record pages: \(served) served, \(refused) refused")
        #expect((5...10).contains(served) && served + refused == 30, "\(statuses)")
        // Its pages read or dropped, the app's queries are answered again.
        let dropped = try call("drop")
        #expect(dropped.status == 200 && (Int(dropped.text) ?? 0) >= 4, "\(dropped.text)")
    }

    /// After a request llhttp stops at (`Connection: upgrade` with `Upgrade`), NIO's decoder held
    /// every later byte of the connection, without bound, until the idle timeout: any app's code
    /// could fill gustd's memory through its records channel (past 4 GiB NIO traps and gustd
    /// dies). The connection is closed once more than 64 KiB have followed such a head.
    @Test(.scratchDirectory) func bytesAfterAnUpgradeHeadOnTheRecordsChannelAreNotHeld() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try work.write("__init__.py", """
            import os
            import socket

            import gust

            @gust.op('stuff')
            def stuff(megabytes):
                connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                connection.connect(os.environ['GUST_RECORDS_SOCKET'])
                connection.settimeout(10)
                connection.sendall(b'GET / HTTP/1.1\\r\\nHost: r\\r\\nConnection: Upgrade\\r\\nUpgrade: x\\r\\n\\r\\n')
                sent = 0
                try:
                    while sent < megabytes << 20:
                        sent += connection.send(b'x' * 65536)
                except OSError as error:
                    return {'closed': True, 'sent': sent, 'error': type(error).__name__}
                finally:
                    connection.close()
                return {'closed': False, 'sent': sent}

            """)
        try work.commit("Stuffs the records channel")
        let pushed = try work.push(to: fixture.remote)
        #expect(pushed.status == 0, "\(pushed.output)")
        let answer = try HTTPClient.request(port: fixture.port, "POST", "/apps/cats/_/functions/stuff", body: #"{"megabytes": 64}"#)
        #expect(answer.status == 200, "\(answer.text)")
        #expect(answer.json?["closed"] as? Bool == true, "gustd took it all: \(answer.text)")
        #expect((answer.json?["sent"] as? Int ?? .max) < 8 << 20, "\(answer.text)")
    }
}
