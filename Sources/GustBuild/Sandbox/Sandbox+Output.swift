#if canImport(Glibc)
import Glibc
#endif
import Foundation

extension Sandbox {
    /// Where bubblewrap's stderr goes, so that an error about its start (`firstChild`, `release`) says
    /// where bwrap's own words are: in output the caller shows (a build's, an instance's log lines,
    /// read from pipes), or in a file that only the error can show (a holder's, `SandboxHolders`).
    public enum Output: Sendable {
        /// Pipes whose lines the caller shows: the error points at them ("its output is above").
        case shown
        /// A file the caller gave (its descriptor, read from offset 0): the error carries what bwrap wrote there.
        case file(Int32)

        /// `what` happened to bubblewrap, with bwrap's words from the file; from pipes, pointing at
        /// them when `pointsAbove` (bwrap exited: its words say why), else as it is.
        func error(_ what: String, pointsAbove: Bool = true) -> SandboxError {
            guard case .file(let fd) = self else { return SandboxError(pointsAbove ? "\(what); its output is above." : "\(what).") }
            var bytes = [UInt8](repeating: 0, count: 2_048)
            let count = pread(fd, &bytes, bytes.count, 0)
            let words = String(decoding: bytes.prefix(max(count, 0)), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return SandboxError(words.isEmpty ? "\(what) (it wrote nothing)." : "\(what): \(words)")
        }
    }
}
