import GustBuild
import NIOCore
import NIOHTTP1
import Synchronization

/// Calls sent without a task: the gateway's lane for calls (`GatewayLane`,
/// `Gateway+CallLane.swift`) takes an instance from its pool and one of its idle
/// connections on the event loop that read the request, and is answered there
/// through callbacks, where `call` would wake a Swift Concurrency task for each
/// step. The bookkeeping is `send`'s: the call's id, its output credited to its
/// function, the connection given back (or, after a streamed answer, closed),
/// and the instance marked broken when a call fails.
extension Instance {
    /// An idle connection whose channel lives on `loop`, or, for the first call of all, the
    /// connection the launch opened (wherever it lives); nil if there is none: the lane then
    /// asks `connection(on:)`, which makes one.
    nonisolated func idleConnection(on loop: any EventLoop) -> InstanceConnection? {
        connections.withLock { $0.take(on: ObjectIdentifier(loop)) }
    }

    /// Sends `request` on `connection` (from `idleConnection`): `deliver` gets the answer's parts
    /// on the connection's event loop, after this instance has done its own bookkeeping of each.
    nonisolated func start(
        _ request: InstanceRequest, on connection: InstanceConnection, timeout: Duration,
        deliver: @escaping @Sendable (InstanceAnswerPart) -> Void
    ) {
        var request = request
        let function = request.function
        let call = manifest.takesCallIDs ? CallTag.next() : nil
        request.callTag = call
        output.begin(function, call: call, request: request.headers.first(name: "X-Request-Id"))
        connection.start(request, timeout: timeout) { [self] part in
            switch part {
            case .whole:
                output.end(function, call: call)
                connections.withLock { $0.give(connection) }
            case .head:
                // Busy until its answer ends, then closed; what it prints until then is still its function's.
                connections.withLock { $0.forget(connection) }
            case .chunk:
                break
            case .end, .streamFailed:
                connection.close()
                output.end(function, call: call)
            case .failed:
                output.end(function, call: call)
                connections.withLock { $0.give(connection) }
                markBroken()
            }
            deliver(part)
        }
    }

    /// `ranOutOfMemory` without a task: polls (every 10 ms, for at most 2 s) on `loop` for the
    /// process to exit, then tells `answer` whether its cgroup saw it killed for memory.
    nonisolated func ranOutOfMemory(checkingOn loop: any EventLoop, _ answer: @escaping @Sendable (Bool) -> Void) {
        guard let cgroup else { return answer(false) }
        Self.poll(process, cgroup, on: loop, tries: 200, answer)
    }

    private static func poll(
        _ process: InstanceProcess, _ cgroup: InstanceCgroup, on loop: any EventLoop, tries: Int, _ answer: @escaping @Sendable (Bool) -> Void
    ) {
        // Exited (its exit handler may still be to run) or not, `sawOutOfMemory` reads what is known.
        if process.hasExited || tries == 0 { return answer(cgroup.sawOutOfMemory) }
        loop.scheduleTask(in: .milliseconds(10)) { poll(process, cgroup, on: loop, tries: tries - 1, answer) }
    }
}
