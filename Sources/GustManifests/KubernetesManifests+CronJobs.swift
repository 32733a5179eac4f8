import GustCore

/// Each schedule as a CronJob that runs the image's `schedule NAME` once per
/// tick: one run per schedule however many replicas serve the app, and
/// `concurrencyPolicy: Forbid` skips a tick while the last run goes on, as
/// gustd never overlaps two runs of one schedule.
extension KubernetesManifests {
    func cronJobs() throws(GustError) -> (documents: [YAMLNode], notes: [String]) {
        var documents: [YAMLNode] = []
        var notes: [String] = []
        var names: [String: String] = [:]
        if let note = release.schedulesNote { notes.append(note) }
        for schedule in release.schedules.sorted(by: { $0.name < $1.name }) {
            let shown = YAMLNode.quoted(schedule.name)
            guard case .translated(let cron) = CronSchedule(kind: schedule.kind, spec: schedule.spec) else {
                if case .untranslatable(let reason) = CronSchedule(kind: schedule.kind, spec: schedule.spec) {
                    notes.append("schedule \(shown) (\(schedule.kind) \(YAMLNode.quoted(schedule.spec))) has no CronJob: \(reason). Keep it on the Gust server, or write its CronJob by hand.")
                }
                continue
            }
            let jobName = KubernetesName.label("\(release.app)-\(schedule.name)", maxLength: KubernetesName.maxCronJobLength)
            if let other = names[jobName] {
                throw GustError("The schedules \(YAMLNode.quoted(other)) and \(shown) would both be the CronJob \(jobName).", code: 409)
            }
            names[jobName] = schedule.name
            documents.append(cronJob(jobName, schedule: schedule, cron: cron))
        }
        return (documents, notes)
    }

    private func cronJob(_ jobName: String, schedule: StoredSchedule, cron: String) -> YAMLNode {
        // The name as the app registered it, and the spec as it wrote it, for a person reading the cluster.
        let annotations: [YAMLNode.Entry] = [
            .init("gust/schedule", .string(schedule.name)), .init("gust/spec", .string("\(schedule.kind) \(schedule.spec)")),
        ]
        let jobLabels = labels(component: "schedule")
        return [
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": metadata(name: jobName, component: "schedule", annotations: annotations),
            "spec": [
                "schedule": .string(cron),
                // An `every` interval has no zone; a cron line follows the app's TZ, as under gustd.
                "timeZone": .string(schedule.kind == "cron" ? schedule.timeZone : "UTC"),
                "concurrencyPolicy": "Forbid",
                "jobTemplate": [
                    "metadata": ["labels": jobLabels],
                    "spec": [
                        // gustd runs a schedule once per tick and records a failure; it does not retry.
                        "backoffLimit": 0,
                        "template": [
                            "metadata": ["labels": jobLabels],
                            "spec": podSpec(containers: [container(name: "schedule", args: ["schedule", schedule.name])], restartPolicy: "Never"),
                        ],
                    ],
                ],
            ],
        ]
    }
}
