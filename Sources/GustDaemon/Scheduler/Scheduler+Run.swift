import Foundation
import GustCore
import NIOCore
import NIOHTTP1
import Synchronization

extension Scheduler {
    /// Makes one run through the live instance (`POST /_gust/schedules/NAME`
    /// with the params as the JSON body), within the function time limit, and
    /// records how it went in the runs table and the app's log. Returns why it failed, or nil.
    @discardableResult
    func run(_ firing: Firing) async -> String? {
        defer { finished(firing.key) }
        let key = firing.key
        // An app the supervisor no longer serves (being stopped, or removed) runs nothing.
        guard supervisor.route(of: key.app) != nil else { return "\(key.app) is not served" }

        let started = Date()
        let clock = ContinuousClock.now
        let id = try? await store.run { try $0.recordRun(key.app, schedule: key.name, release: firing.release, startedAt: started) }
        await log(key, release: firing.release, "Run started")

        let ran = InstanceID()
        var failure: String?
        var ended: ContinuousClock.Instant?
        let request = request(for: firing)
        do {
            // A run waits for an instance like any call (the pool may start one) within the same limit.
            let (response, answered) = try await supervisor.withInstance(key.app, deadline: clock + timeout) { [timeout] live in
                ran.set(live.id)
                // Only what a run's error message needs of its answer is collected (a hundred runs a
                // second of an app's could each have held 32 MiB of gustd).
                let response = try await live.call(
                    request, timeout: max(clock + timeout - .now, .milliseconds(1)), maxBodyBytes: Self.readableAnswer)
                let answered = ContinuousClock.now
                // Its lines before its end in the log (not counted in its time).
                await live.outputIsDelivered(within: .milliseconds(500))
                return (response, answered)
            }
            ended = answered
            if response.status != 200 { failure = Self.message(of: response) }
        } catch InstanceCallError.timedOut {
            failure = "did not finish within \(timeout.shortText); its instance was replaced"
        } catch InstanceCallError.connectionClosed {
            failure = "the instance's process stopped during the run"
        } catch InstanceCallError.malformedAnswer {
            failure = "the instance wrote something that is not an answer gustd reads; it was replaced"
        } catch InstanceCallError.tooLarge {
            failure = "the instance answered more than \(ByteCount(Self.readableAnswer)), more than a run's answer may be (not read)"
        } catch let refusal as CallRefusal {
            failure = refusal.message
        } catch let error as GustError {
            failure = error.message
        } catch {
            failure = String(describing: error)
        }
        let instance = ran.id

        let elapsed = (ended ?? .now) - clock
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        if let id {
            _ = try? await store.run { [failure] in try $0.finishRun(id, seconds: seconds, status: failure == nil ? .ok : .error, error: failure) }
        }
        CallMetrics.scheduleRun(key.app, schedule: key.name, failed: failure != nil, duration: elapsed, history: supervisor.consoleHistory)
        let took = String(format: "%.2f s", seconds)
        if let failure {
            await log(key, release: firing.release, instance: instance, stream: "stderr", "Run failed after \(took): \(failure)")
        } else {
            await log(key, release: firing.release, instance: instance, "Run finished in \(took)")
        }
        return failure
    }

    /// Runs one schedule of a live app at once, as its spec would run it
    /// (`gust dev --run NAME`); refused while a run of it is going.
    func runNow(_ app: AppName, schedule name: String) async throws(GustError) -> String? {
        switch startRunNow(Key(app: app, name: name)) {
        case .started(let firing):
            return await run(firing)
        case .busy:
            throw GustError("A run of \(name) is still going; try again when it ends.", code: 409)
        case .unknown:
            let names = scheduleNames(of: app)
            throw GustError.notFound(
                "\(app) has no schedule named '\(name.prefix(100))'.",
                hint: names.isEmpty ? "Its live release declares no schedules." : "It has \(names.joined(separator: ", "))."
            )
        }
    }

    private func request(for firing: Firing) -> InstanceRequest {
        let name = firing.key.name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? firing.key.name
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        // `{}` lets the runtime use the params given at registration.
        return InstanceRequest(method: .POST, target: "/_gust/schedules/\(name)", headers: headers, body: ByteBuffer(string: firing.params ?? "{}"))
    }

    /// The most of an app's `{"error": …}` a failed run keeps, in UTF-8 bytes: the message is stored
    /// in gustd's own database (50 runs of each of up to 100 schedules) and logged, and the app
    /// writes it. A traceback's last lines fit.
    static let errorLimit = 4096
    /// An answer past this is not parsed for its message: a runtime's error answer is small.
    static let readableAnswer = 64 * 1024

    /// The runtime's `{"error": …}`, cut to `errorLimit`, or the status when the body says nothing
    /// readable (or is too big to read for it).
    static func message(of response: InstanceResponse) -> String {
        let body = response.body.readableBytesView
        guard body.count <= readableAnswer else {
            return "the instance answered status \(response.status) (\(ByteCount(body.count)), not read)"
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
              let error = object["error"] as? String else {
            return "the instance answered status \(response.status)"
        }
        return "\(error.cut(toUTF8Bytes: errorLimit)) (status \(response.status))"
    }
}

/// Which instance a run went to, for its log lines.
private final class InstanceID: Sendable {
    private let value = Mutex<String?>(nil)
    func set(_ id: String) { value.withLock { $0 = id } }
    var id: String? { value.withLock { $0 } }
}
