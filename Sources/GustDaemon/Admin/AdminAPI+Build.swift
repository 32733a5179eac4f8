import Foundation
import GustBuild
import GustCore
import HTTPTypes
import Hummingbird
import NIOCore

/// `POST /v1/build` (`AdminBuildRequest`): gustd builds the tree a push's hook
/// exported, and streams the build's lines back as newline-delimited JSON
/// (`AdminBuildEvent`), which the hook prints as it did when it built itself.
///
/// The build is tied to the connection: a hook that goes away (git push
/// interrupted, its sshd session gone) makes the next write fail, at the
/// latest at the next heartbeat, and that cancels the build: its processes
/// and cgroup are killed, its files given back and its workspace removed.
/// Nothing of it is recorded (the hook records releases).
extension AdminAPI {
    /// How often a build's stream says it is alive, and so how soon a hook that went away is noticed.
    static let buildHeartbeat: Duration = .seconds(1)

    func build(_ request: Request) async throws -> Response {
        let body = try await request.body.collect(upTo: 64 * 1024)
        guard let wanted = try? JSONDecoder().decode(AdminBuildRequest.self, from: Data(body.readableBytesView)),
            let app = try? AppName(wanted.app)
        else {
            return Gateway.error(400, "Send {\"app\": NAME, \"commit\": SHA, \"workspace\": PATH, \"buildpacks\": PATH, …} (AdminBuildRequest).")
        }
        let supervisor = self.supervisor
        var headers = HTTPFields()
        headers[.contentType] = "application/x-ndjson"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            let (events, continuation) = AsyncStream.makeStream(of: AdminBuildEvent.self)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    let outcome = await Self.runBuild(wanted, app: app, supervisor: supervisor) { continuation.yield(AdminBuildEvent(line: $0)) }
                    continuation.yield(outcome)
                    continuation.finish()
                }
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: Self.buildHeartbeat)
                        if !Task.isCancelled { continuation.yield(AdminBuildEvent(heartbeat: true)) }
                    }
                }
                // Leaving, by the end of the build or by a write that failed, stops the heartbeat and the build.
                defer { group.cancelAll() }
                let encoder = JSONEncoder()
                for await event in events {
                    var line = try encoder.encode(event)
                    line.append(UInt8(ascii: "\n"))
                    try await writer.write(ByteBuffer(bytes: line))
                }
            }
            try await writer.finish(nil)
        })
    }

    /// Waits for the app's turn, builds, and says how it ended; counts the build in the metrics.
    private static func runBuild(
        _ request: AdminBuildRequest, app: AppName, supervisor: Supervisor, line: @escaping @Sendable (String) -> Void
    ) async -> AdminBuildEvent {
        let reporter = BuildReporter(sink: line)
        await supervisor.buildTurns.take(app)
        defer { supervisor.buildTurns.give(app) }
        let prepared: (build: Build, workspace: URL)
        do { prepared = try await supervisor.prepareBuild(request, app: app, reporter: reporter) } catch {
            return failure(error)
        }
        let started = ContinuousClock.now
        do {
            let output = try await prepared.build.run(in: prepared.workspace, commitTime: request.commitTime)
            GustMetrics.build(app, succeeded: true, duration: .now - started)
            return AdminBuildEvent(built: AdminBuildResult(
                buildpack: output.buildpack, process: output.process, artifact: output.artifact.digest,
                artifactSize: output.artifact.size, stack: output.stack?.reference.description
            ))
        } catch {
            GustMetrics.build(app, succeeded: false, duration: .now - started)
            return failure(error)
        }
    }

    private static func failure(_ error: any Error) -> AdminBuildEvent {
        let code = (error as? GustError)?.code ?? 500
        return AdminBuildEvent(error: String(describing: error), code: code)
    }
}
