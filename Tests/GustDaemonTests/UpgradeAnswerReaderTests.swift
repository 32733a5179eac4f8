@testable import GustDaemon
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Synchronization
import Testing

/// An instance's answer to a WebSocket upgrade: gustd splices frames only into a connection the
/// instance switched to WebSocket. Any 101 was taken, and a handler can answer 101 with nothing
/// else: a client's frames then went to an instance reading its connection as HTTP.
@Suite struct UpgradeAnswerReaderTests {
    func answer(to head: HTTPResponseHead) throws -> Result<String, any Error> {
        let channel = EmbeddedChannel()
        let promise = channel.eventLoop.makePromise(of: UpgradeAnswer.self)
        try channel.pipeline.syncOperations.addHandler(UpgradeAnswerReader(promise: promise))
        try channel.writeInbound(HTTPClientResponsePart.head(head))
        let outcome = Mutex<Result<String, any Error>?>(nil)
        promise.futureResult.whenComplete { result in
            let named = result.map { answer in
                switch answer {
                case .switched: "switched"
                case .refused(let response): "refused \(response.status)"
                }
            }
            outcome.withLock { $0 = named }
        }
        return try #require(outcome.withLock { $0 })
    }

    @Test func a101ToWebSocketIsSwitchedAndAny101ElseIsRefused() throws {
        let switched = HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: ["Upgrade": "WebSocket", "Connection": "Upgrade"])
        #expect(try answer(to: switched).get() == "switched")
        for headers: HTTPHeaders in [[:], ["Upgrade": "h2c"], ["Connection": "Upgrade"]] {
            let head = HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: headers)
            #expect(throws: InstanceCallError.malformedAnswer) { try answer(to: head).get() }
        }
    }
}
