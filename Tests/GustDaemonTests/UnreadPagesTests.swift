import GustCore
@testable import GustDaemon
import Testing

/// Record pages answered and not yet read are bounded per app: a client that asks and never
/// reads holds up its own app's next pages, not gustd's memory.
struct UnreadPagesTests {
    @Test func pagesAreHeldUntilTheirHoldIsGoneAndRefusedPastTheLimit() throws {
        let pages = UnreadPages(limit: 100)
        let cats = try AppName("cats"), dogs = try AppName("dogs")
        var first: UnreadPages.Hold? = pages.hold(60, for: cats)
        let second = pages.hold(40, for: cats)
        #expect(first != nil && second != nil)
        #expect(pages.bytes(of: cats) == 100)
        #expect(pages.hold(1, for: cats) == nil, "past the limit")
        #expect(pages.hold(100, for: dogs) != nil, "another app's pages are its own")
        first = nil
        #expect(pages.bytes(of: cats) == 40)
        #expect(pages.hold(60, for: cats) != nil)
        #expect(pages.refusal(cats).code == 429)
        withExtendedLifetime(second) {}
    }

    @Test func aPageLargerThanTheLimitIsTakenWhenNothingElseIsHeld() throws {
        let pages = UnreadPages(limit: 100)
        let cats = try AppName("cats")
        var big = pages.hold(500, for: cats)
        #expect(big != nil)
        #expect(pages.hold(1, for: cats) == nil)
        big = nil
        #expect(pages.bytes(of: cats) == 0)
        #expect(pages.hold(1, for: cats) != nil)
    }

    /// A full app's page is refused before its query runs: the store's work and the page's
    /// memory are spent only on a page that can be held.
    @Test func anAppAtItsLimitIsFullUntilAPageIsRead() throws {
        let pages = UnreadPages(limit: 100)
        let cats = try AppName("cats"), dogs = try AppName("dogs")
        #expect(!pages.isFull(cats))
        var held = pages.hold(100, for: cats)
        #expect(pages.isFull(cats))
        #expect(!pages.isFull(dogs))
        held = nil
        #expect(!pages.isFull(cats))
        withExtendedLifetime(held) {}
    }
}
