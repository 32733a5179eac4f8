import GustCore
import Synchronization

/// How much a build may print (to the pusher, and into the release's build
/// log, which the store keeps): `bytes`. The line that would go past them
/// stops the build, which fails naming the limit: a build printing 1 GB
/// neither floods the push nor keeps gust-receive reading for minutes.
final class BuildOutputBudget: Sendable {
    private struct State {
        var left: Int
        var exceeded = false
    }

    private let bytes: Int
    private let state: Mutex<State>

    init(bytes: Int) {
        self.bytes = bytes
        state = Mutex(State(left: bytes))
    }

    /// Whether `line` fits in what is left; once one does not, none does.
    func admit(_ line: String) -> Bool {
        state.withLock { state in
            let size = line.utf8.count + 1
            guard !state.exceeded, size <= state.left else {
                state.exceeded = true
                return false
            }
            state.left -= size
            return true
        }
    }

    /// The error of a build stopped here.
    var failure: GustError {
        GustError(
            "The build printed more than its limit of \(LimitSize.spoken(bytes)) of output and was stopped.",
            hint: "Print less while building (pip -q, npm --silent), or ask an admin to raise gustd's --build-output-limit."
        )
    }
}
