import GustCore
import Synchronization

/// Which app each custom domain (`gust domains add`) belongs to, as the
/// gateway reads it on every request. `CertificateManager` replaces the whole
/// table when the store changes; readers never wait on the store.
final class DomainRoutes: Sendable {
    private let table = Mutex<[DomainName: AppName]>([:])

    init(_ initial: [DomainName: AppName] = [:]) { table.withLock { $0 = initial } }

    func replace(_ routes: [DomainName: AppName]) { table.withLock { $0 = routes } }

    /// The app whose domain `name` is.
    func app(for name: DomainName) -> AppName? { table.withLock { $0[name] } }

    var all: [DomainName: AppName] { table.withLock { $0 } }
}
