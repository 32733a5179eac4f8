import GustCore
import Testing

@testable import GustDaemon

/// How the one issuing loop shares the CA out between apps (`IssuanceTurns`): a budget of orders
/// per app and hour, turns between apps, and a removed name's backoff kept for its return.
@Suite struct IssuanceTurnsTests {
    let now = ContinuousClock.now
    let cats = try! AppName("cats"), dogs = try! AppName("dogs")

    func names(_ prefix: String, _ count: Int, _ app: AppName) -> [(name: DomainName, app: AppName)] {
        (0..<count).map { (try! DomainName("\(prefix)\($0).example.com"), app) }
    }

    @Test func anAppStartsAtMostItsBudgetOfOrdersAnHour() {
        var turns = IssuanceTurns()
        let due = names("a", 30, cats)
        var asked: [DomainName] = []
        while let name = turns.next(of: due, now: now) { asked.append(name) }
        #expect(asked.count == IssuanceTurns.ordersPerHour)
        #expect(turns.next(of: due, now: now + .seconds(3599)) == nil)
        #expect(turns.next(of: due, now: now + .seconds(3601)) != nil, "an hour on, the budget is back")
    }

    @Test func appsTakeTurnsWhateverTheirNamesSortAs() {
        var turns = IssuanceTurns()
        let due = names("0", 5, cats) + names("z", 5, dogs)
        let asked = (0..<6).compactMap { step in turns.next(of: due, now: now + .seconds(step)) }
        let apps = asked.map { name in due.first { $0.name == name }!.app.rawValue }
        #expect(apps == ["cats", "dogs", "cats", "dogs", "cats", "dogs"], "\(apps)")
    }

    @Test func anAppOverItsBudgetLeavesTheLoopToTheOthers() {
        var turns = IssuanceTurns()
        let flood = names("0", 40, cats)
        for step in 0..<IssuanceTurns.ordersPerHour { _ = turns.next(of: flood, now: now + .seconds(step)) }
        let later = now + .seconds(60)
        let renewal = names("shop", 1, dogs)
        #expect(turns.next(of: flood + renewal, now: later) == renewal[0].name)
        #expect(turns.next(of: flood, now: later) == nil)
    }

    @Test func aRemovedNameComesBackWithItsBackoffWithinADay() throws {
        var turns = IssuanceTurns()
        let name = try DomainName("shop.example.com")
        turns.remember(name, .init(failures: 6, retryAt: now + .seconds(3600), lastRequested: nil, removedAt: now))
        let back = turns.restore(name, now: now + .seconds(10))
        #expect(back?.failures == 6 && back?.retryAt == now + .seconds(3600))
        #expect(turns.restore(name, now: now + .seconds(20)) == nil, "taken once")
        turns.remember(name, .init(failures: 2, retryAt: nil, lastRequested: nil, removedAt: now))
        #expect(turns.restore(name, now: now + IssuanceTurns.rememberRemoved + .seconds(1)) == nil, "forgotten after a day")
    }
}
