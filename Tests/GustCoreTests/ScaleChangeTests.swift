import GustCore
import Testing

/// How scale rules are read and said back: `--idle` as written, and the rules as people write them.
@Suite struct ScaleChangeTests {
    @Test func idleIsSaidBackAsItIsWritten() throws {
        for (seconds, text) in [(1, "1s"), (45, "45s"), (60, "1m"), (90, "1m30s"), (300, "5m"), (3600, "1h"), (5400, "1h30m"), (3661, "1h1m1s"), (86_400, "24h")] {
            let settings = ScaleSettings(min: 1, max: 4, concurrency: 10, idleSeconds: seconds)
            #expect(settings.idleText == text)
            #expect(try ScaleChange.seconds(text) == seconds, "\(text) reads back as it was written")
        }
        #expect(ScaleSettings.standard.activityText == "min 1, max 4, concurrency 10, idle 5m")
    }
}
