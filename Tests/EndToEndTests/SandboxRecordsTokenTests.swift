import Foundation
import GustCore
import GustTesting
import Testing

/// Every sandboxed app's instances reach the same records listener (a link in each one's socket
/// directory), and a request is the app its secret names. An app that leaks its
/// `GUST_RECORDS_TOKEN` (an error page showing its environment) must not hand its records to
/// another app's code: the secret is bound to its app's uid, which gustd reads of the connection.
extension SandboxTests {
    @Test(.scratchDirectory) func aRecordsTokenWorksOnlyFromItsOwnAppsProcesses() throws {
        guard let setup = try Self.prepareUser() else { return }
        let root = ScratchDirectory.current
        let (home, installed) = try Self.prepareHome(setup, in: root, apps: ["dogs", "evil"])
        let gustd = try GustdProcess(home: home, arguments: [], user: Self.user, executable: installed.gustd)
        defer { gustd.stop() }

        let dogs = try setup.workspace(root, "dogs", files: [
            "__init__.py": """
                import os

                import gust

                @gust.op('leak')
                def leak():
                    gust.records.save('dog', {'name': 'rex'})
                    return os.environ['GUST_RECORDS_TOKEN']
                """,
        ])
        #expect(try setup.push(dogs, to: home.repository(try AppName("dogs")).path).status == 0)
        let evil = try setup.workspace(root, "evil", files: [
            "__init__.py": """
                import os
                import socket

                import gust

                @gust.op('borrow')
                def borrow(token):
                    # Its own link to the records listener, with a secret of its choosing.
                    request = (f'GET /v1/records/dog HTTP/1.1\\r\\nHost: gustd\\r\\nConnection: close\\r\\n'
                               f'Authorization: Bearer {token or os.environ["GUST_RECORDS_TOKEN"]}\\r\\n\\r\\n').encode()
                    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                        connection.connect(os.environ['GUST_RECORDS_SOCKET'])
                        connection.sendall(request)
                        answer = b''
                        while chunk := connection.recv(65536):
                            answer += chunk
                    return answer.decode(errors='replace')
                """,
        ])
        #expect(try setup.push(evil, to: home.repository(try AppName("evil")).path).status == 0)

        let leaked = try HTTPClient.request(port: gustd.port, "POST", "/apps/dogs/_/functions/leak", timeout: 30)
        #expect(leaked.status == 200, "\(leaked.text)")
        let token = (try? JSONSerialization.jsonObject(with: Data(leaked.text.utf8), options: [.fragmentsAllowed])) as? String ?? ""
        #expect(token.count == 64, "\(leaked.text)")
        func borrow(_ token: String?) throws -> String {
            let body = token.map { #"{"token": "\#($0)"}"# } ?? #"{"token": null}"#
            let answer = try HTTPClient.request(port: gustd.port, "POST", "/apps/evil/_/functions/borrow", body: body, timeout: 30)
            #expect(answer.status == 200, "\(answer.text)")
            return (try? JSONSerialization.jsonObject(with: Data(answer.text.utf8), options: [.fragmentsAllowed])) as? String ?? answer.text
        }
        let stolen = try borrow(token)
        #expect(stolen.hasPrefix("HTTP/1.1 401"), "dogs' secret from evil's code: \(stolen)")
        #expect(!stolen.contains("rex"), "\(stolen)")
        let own = try borrow(nil)
        #expect(own.hasPrefix("HTTP/1.1 200") && !own.contains("rex"), "evil's own secret names evil: \(own)")
        // The secret still works from dogs' own instance.
        #expect(try HTTPClient.request(port: gustd.port, "POST", "/apps/dogs/_/functions/leak", timeout: 30).status == 200)
    }
}
