import ServiceLifecycle

/// The scheduler's place in gustd's `ServiceGroup`: wakes when the next run is
/// due (at least every quarter second, so changes from a deploy are seen soon)
/// and runs each firing as a child task. On shutdown it stops firing and waits
/// for the runs in flight, which end once the supervisor has stopped their instances.
struct SchedulerService: Service {
    let scheduler: Scheduler

    func run() async throws {
        let scheduler = self.scheduler
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                while !Task.isCancelled {
                    for firing in await scheduler.due() {
                        group.addTask { _ = await scheduler.run(firing) }
                    }
                    let wait = await scheduler.timeUntilNextRun(atMost: .milliseconds(250))
                    try? await Task.sleep(for: max(wait, .milliseconds(1)))
                }
            }
        }
    }
}
