import AsyncHTTPClient
import Foundation
import GustCore
import Logging
import ServiceLifecycle

/// Owns the apps' own domains in gustd: which app each one routes to
/// (`DomainRoutes`), and, when gustd serves HTTPS with ACME, the certificate
/// of each: loaded from `GUST_HOME/tls/certificates` at start, issued when
/// missing, renewed at two thirds of its lifetime (or when `gust domains renew`
/// asks), swapped into `SNICertificates` without a restart. A failure is
/// logged and recorded for `gust domains list`, then retried with backoff;
/// the domain keeps answering over HTTP (and with its old certificate, if any).
actor CertificateManager {
    let routes: DomainRoutes
    let challenges: ChallengeResponder
    /// nil without `--https`: domains route over HTTP only.
    let certificates: SNICertificates?
    private let acme: ACMEClient?
    private let store: StoreAccess
    private let directory: URL
    private let logger: Logger
    private var tracked: [DomainName: Tracked] = [:]
    private var turns = IssuanceTurns()

    /// First retry after a failed issuance; each further failure doubles it, up to `longestRetry`.
    static let firstRetry: Duration = .seconds(30)
    static let longestRetry: Duration = .seconds(6 * 3600)

    /// How long a renewal asked for (`gust domains renew`, which an app's scoped key may run) waits
    /// after the last one asked for: a loop of renews cannot hold the one issuing loop, nor spend
    /// the ACME account's order limits that every app's certificates share.
    static let requestedRenewalGap: Duration = .seconds(3600)

    struct Tracked {
        var app: AppName
        var served: ServedCertificate?
        var failures = 0
        var retryAt: ContinuousClock.Instant?
        var renewRequested = false
        /// When gustd last asked the CA for this name because a renewal was asked for.
        var lastRequested: ContinuousClock.Instant?

        /// Two thirds into the served certificate's life; nil without one.
        var renewsAt: Date? {
            served.map { $0.notBefore.addingTimeInterval($0.notAfter.timeIntervalSince($0.notBefore) * 2 / 3) }
        }

        /// Whether to ask the CA now: never during the backoff after a failure; a renewal asked for
        /// at once, unless one asked for was tried within the hour; else without a certificate or
        /// past `renewsAt`.
        func isDue(renewsAt: Date?, now: ContinuousClock.Instant, date: Date) -> Bool {
            if let retryAt, now < retryAt { return false }
            if renewRequested, lastRequested.map({ now - $0 >= CertificateManager.requestedRenewalGap }) ?? true { return true }
            guard let renewsAt else { return true }
            return date >= renewsAt
        }
    }

    init(home: GustHome, certificates: SNICertificates?, acme: ACMEClient?, logger: Logger) throws {
        store = try StoreAccess(home: home)
        routes = DomainRoutes()
        challenges = ChallengeResponder()
        self.certificates = certificates
        self.acme = certificates == nil ? nil : acme
        directory = home.tls.appendingPathComponent("certificates")
        self.logger = logger
    }

    /// Re-reads the domains from the store (at start, and whenever the admin API hears of a change).
    func refresh() async {
        let rows: [AppDomain], renewals: [DomainName]
        do {
            (rows, renewals) = try await store.run { store in (try store.domains(), try store.takeRenewalRequests()) }
        } catch {
            logger.error("Cannot read the domains from the store: \(error)")
            return
        }
        var table: [DomainName: AppName] = [:]
        for row in rows {
            table[row.name] = row.app
            if tracked[row.name] == nil {
                var entry = Tracked(app: row.app, served: load(row.name))
                // Added again: its backoff as it was, not a clean slate (`IssuanceTurns`).
                if let backoff = turns.restore(row.name, now: .now) {
                    entry.failures = backoff.failures
                    entry.retryAt = backoff.retryAt
                    entry.lastRequested = backoff.lastRequested
                }
                tracked[row.name] = entry
                if let served = entry.served { install(served, for: row.name) }
            }
            tracked[row.name]?.app = row.app
        }
        for name in renewals { tracked[name]?.renewRequested = true }
        routes.replace(table)
        for name in tracked.keys where table[name] == nil {
            if let entry = tracked[name] {
                turns.remember(name, .init(failures: entry.failures, retryAt: entry.retryAt, lastRequested: entry.lastRequested, removedAt: .now))
            }
            tracked[name] = nil
            certificates?.remove(name)
            GustMetrics.certificateExpiry(name, notAfter: nil)
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(name.rawValue))
            logger.notice("Domain \(name) removed: no longer served")
        }
    }

    /// Issues and renews what is due, one domain at a time, until cancelled (gustd's shutdown).
    func run() async {
        await refresh()
        while !Task.isCancelled {
            if let name = nextDue() {
                await attempt(name)
            } else {
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// The next due name, as `IssuanceTurns` shares the CA out between apps.
    private func nextDue(now: ContinuousClock.Instant = .now) -> DomainName? {
        guard acme != nil else { return nil }
        let date = Date()
        let due = tracked.compactMap { name, entry in entry.isDue(renewsAt: entry.renewsAt, now: now, date: date) ? (name, entry.app) : nil }
        return turns.next(of: due, now: now)
    }

    private func attempt(_ name: DomainName) async {
        guard let acme, let certificates else { return }
        let renewing = tracked[name]?.served != nil
        // This attempt answers a pending request, whatever made it due; the hour between requests
        // counts from the attempts a request could have made due.
        if let entry = tracked[name], entry.renewRequested, entry.lastRequested.map({ .now - $0 >= Self.requestedRenewalGap }) ?? true {
            tracked[name]?.lastRequested = .now
        }
        tracked[name]?.renewRequested = false
        logger.notice("ACME: \(renewing ? "renewing" : "requesting") the certificate for \(name) from \(acme.directoryURL)")
        do {
            let (chainPEM, key) = try await acme.issue(name, challenges: challenges, logger: logger)
            let served = try ServedCertificate(chainPEM: chainPEM, keyPEM: key.pem)
            guard tracked[name] != nil else { return }  // removed meanwhile
            try save(name, chainPEM: chainPEM, keyPEM: key.pem)
            certificates.install(served, for: name)
            tracked[name]?.served = served
            tracked[name]?.failures = 0
            tracked[name]?.retryAt = nil
            GustMetrics.certificateExpiry(name, notAfter: served.notAfter.timeIntervalSince1970)
            logger.notice("ACME: certificate for \(name) issued (serial \(served.serial), expires \(served.notAfter))")
            await record(name, .issued(expiresAt: served.notAfter, serial: served.serial))
        } catch {
            guard tracked[name] != nil, !Task.isCancelled else { return }
            let failures = (tracked[name]?.failures ?? 0) + 1
            let wait = Self.backoff(failures: failures)
            tracked[name]?.failures = failures
            tracked[name]?.retryAt = .now + wait
            logger.error("ACME: no certificate for \(name) (attempt \(failures), next in \(wait.shortText)): \(error)")
            await record(name, .failed("\(error)"))
        }
    }

    /// 30 s, 1 min, 2 min … up to 6 h.
    static func backoff(failures: Int) -> Duration {
        let doubled = firstRetry * (1 << min(max(failures - 1, 0), 20))
        return min(doubled, longestRetry)
    }

    private func record(_ name: DomainName, _ outcome: CertificateOutcome) async {
        do { try await store.run { try $0.recordCertificate(name, outcome) } } catch {
            logger.error("Cannot record the certificate of \(name) in the store: \(error)")
        }
    }

    private func install(_ served: ServedCertificate, for name: DomainName) {
        certificates?.install(served, for: name)
        GustMetrics.certificateExpiry(name, notAfter: served.notAfter.timeIntervalSince1970)
    }

    // MARK: Files: GUST_HOME/tls/certificates/NAME/{key.pem,fullchain.pem}, 0600 in 0700 directories

    private func load(_ name: DomainName) -> ServedCertificate? {
        guard certificates != nil else { return nil }
        let folder = directory.appendingPathComponent(name.rawValue)
        let chain = folder.appendingPathComponent("fullchain.pem"), key = folder.appendingPathComponent("key.pem")
        guard FileManager.default.fileExists(atPath: chain.path) else { return nil }
        do {
            let served = try ServedCertificate(chainFile: chain, keyFile: key)
            guard served.covers(name.rawValue) else {
                logger.warning("\(chain.path) does not cover \(name): a new one will be requested")
                return nil
            }
            return served
        } catch {
            logger.warning("Cannot load the certificate of \(name) (\(error)): a new one will be requested")
            return nil
        }
    }

    private func save(_ name: DomainName, chainPEM: String, keyPEM: String) throws {
        let folder = directory.appendingPathComponent(name.rawValue)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        // The key first: a chain beside a key it does not match is refused at load, and issued again.
        try AtomicFile.write(Data(keyPEM.utf8), to: folder.appendingPathComponent("key.pem"), mode: 0o600)
        try AtomicFile.write(Data(chainPEM.utf8), to: folder.appendingPathComponent("fullchain.pem"), mode: 0o600)
    }
}

/// Runs the certificate manager for the life of gustd's service group.
struct CertificateService: Service {
    let manager: CertificateManager

    func run() async throws {
        await cancelWhenGracefulShutdown { await manager.run() }
    }
}
