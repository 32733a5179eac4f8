/// Why a call was given up without an answer from its function: its client
/// stopped waiting, or its body did not arrive within its time limit.
enum CallAbandoned: Error, Equatable, CustomStringConvertible {
    /// Its time limit, counted from its arrival, passed before it could run.
    case deadlinePassed
    /// Its client closed the connection while it waited.
    case clientGone

    var description: String {
        switch self {
        case .deadlinePassed: "its time limit passed before it could run"
        case .clientGone: "its client closed the connection while it waited"
        }
    }
}
