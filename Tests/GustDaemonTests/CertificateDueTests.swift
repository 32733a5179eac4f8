import Foundation
import GustCore
import Testing

@testable import GustDaemon

/// When gustd asks the CA for a domain's certificate: `gust domains renew` (which an app's scoped
/// key may run) neither skips the backoff after a failure nor asks more than once an hour.
@Suite struct CertificateDueTests {
    let now = ContinuousClock.now
    let date = Date()

    func tracked(requested: Bool, lastRequested: Duration? = nil, retryIn: Duration? = nil) throws -> CertificateManager.Tracked {
        var entry = CertificateManager.Tracked(app: try AppName("cats"))
        entry.renewRequested = requested
        entry.lastRequested = lastRequested.map { now - $0 }
        entry.retryAt = retryIn.map { now + $0 }
        return entry
    }

    @Test func aRenewalAskedForWaitsOutTheBackoffAndAnHourSinceTheLastOneAskedFor() throws {
        let fresh = date.addingTimeInterval(30 * 86400)  // a certificate not yet due
        #expect(try tracked(requested: true).isDue(renewsAt: fresh, now: now, date: date), "asked for, none asked for before")
        #expect(try !tracked(requested: true, lastRequested: .seconds(600)).isDue(renewsAt: fresh, now: now, date: date), "one asked for was tried 10 minutes ago")
        #expect(try tracked(requested: true, lastRequested: .seconds(3601)).isDue(renewsAt: fresh, now: now, date: date), "over an hour ago")
        #expect(try !tracked(requested: true, retryIn: .seconds(60)).isDue(renewsAt: fresh, now: now, date: date), "in the backoff after a failure")
        #expect(try !tracked(requested: false).isDue(renewsAt: fresh, now: now, date: date))
    }

    @Test func aCertificateIsDueWithoutOneOrTwoThirdsIntoItsLife() throws {
        #expect(try tracked(requested: false).isDue(renewsAt: nil, now: now, date: date))
        #expect(try tracked(requested: false).isDue(renewsAt: date.addingTimeInterval(-1), now: now, date: date))
        #expect(try !tracked(requested: false, retryIn: .seconds(30)).isDue(renewsAt: nil, now: now, date: date))
    }
}
