import Foundation
import GustCore
@testable import GustDaemon
import Hummingbird
import HTTPTypes
import HummingbirdTesting
import Logging
import Testing

/// The gateway in-process, through Hummingbird's test client: what it answers
/// before any instance is involved (addresses, the internal surface, records'
/// token, an app with nothing live). No processes; a scratch store.
@Suite struct GatewayTests {
    func gateway(apps: [String]) throws -> some ApplicationProtocol {
        let home = GustHome(path: FileManager.default.temporaryDirectory
            .appendingPathComponent("gust-gateway-\(UUID().uuidString.prefix(8))").path)
        let store = try Store(home: home)
        for app in apps { _ = try store.createApp(try AppName(app)) }
        let configuration = RouterConfiguration(home: home)
        let supervisor = try Supervisor(configuration: configuration, logger: Logger(label: "test"))
        let records = RecordsAPI(hub: RecordsHub(home: home, supervisor: supervisor))
        return Application(
            responder: Gateway(supervisor: supervisor, configuration: configuration, records: records),
            configuration: .init(address: .hostname("127.0.0.1", port: 0))
        )
    }

    func json(_ buffer: ByteBuffer) -> [String: Any]? {
        try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any]
    }

    @Test func addressesThatNameNoAppAre404JSON() async throws {
        try await gateway(apps: ["cats"]).test(.router) { client in
            for uri in ["/", "/elsewhere", "/apps/", "/apps/Bad_Name/x", "/apps/dogs/x"] {
                try await client.execute(uri: uri, method: .get) { response in
                    #expect(response.status == .notFound, "\(uri)")
                    #expect(json(response.body)?["code"] as? Int == 404, "\(uri)")
                }
            }
        }
    }

    @Test func anAppWithNothingLiveIs503() async throws {
        try await gateway(apps: ["cats"]).test(.router) { client in
            try await client.execute(uri: "/apps/cats/hello", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect((json(response.body)?["error"] as? String)?.contains("no live release") == true)
            }
        }
    }

    @Test func theInternalSurfaceIsNotAnEndpointHoweverSpelt() async throws {
        try await gateway(apps: ["cats"]).test(.router) { client in
            for uri in ["/apps/cats/_gust/manifest", "/apps/cats/%5fgust/manifest", "/apps/cats/%5Fgust/hooks/before_save/cat",
                        "/apps/cats/x/../_gust/health", "/apps/cats//_gust/health", "/apps/cats/%255fgust/manifest", "/apps/cats/_/admin"] {
                try await client.execute(uri: uri, method: .post) { response in
                    #expect(response.status == .notFound, "\(uri)")
                    #expect((json(response.body)?["error"] as? String)?.hasPrefix("No endpoint") == true, "\(uri): \(String(buffer: response.body))")
                }
            }
        }
    }

    @Test func recordsNeedAnAppToken() async throws {
        try await gateway(apps: ["cats"]).test(.router) { client in
            for headers: HTTPFields in [[:], [HTTPField.Name("X-Auth-Token")!: "gust_not-a-token"]] {
                try await client.execute(uri: "/apps/cats/_/records/cat", method: .post, headers: headers, body: ByteBuffer(string: #"{"name": "tom"}"#)) { response in
                    #expect(response.status == .unauthorized)
                    #expect(json(response.body)?["code"] as? Int == 401)
                }
            }
        }
    }
}
