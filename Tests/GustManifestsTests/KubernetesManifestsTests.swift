import Foundation
import GustCore
import GustManifests
import Testing

/// The generator: what each of the app's settings becomes, what is left out and said so.
@Suite struct KubernetesManifestsTests {
    static let app = try! AppName("cats")

    static func schedule(_ name: String, _ kind: String, _ spec: String, zone: String = "UTC") -> StoredSchedule {
        StoredSchedule(app: app, name: name, kind: kind, spec: spec, anchor: Date(timeIntervalSince1970: 0), timeZone: zone, release: 3)
    }

    /// An app with every setting in use, and hostile values where the store lets a user put anything.
    static func release(
        scale: ScaleSettings = ScaleSettings(min: 2, max: 6, concurrency: 10, idleSeconds: 600),
        limits: AppLimits = AppLimits(memory: 256 << 20, cpuMillis: 500, pids: 64, tmp: 32 << 20, disk: 1 << 30),
        schedules: [StoredSchedule]? = nil, concurrency: Int? = nil, namespace: String? = nil
    ) -> ExportedRelease {
        ExportedRelease(
            app: app, version: 3, image: "registry.example.com/team/cats:v3", namespace: namespace, scale: scale,
            concurrencyPerInstance: concurrency, limits: limits,
            config: ["GREETING": "a: b\n- c", "TZ": "Europe/Paris", "PORT": "9999", "API_KEY": "s3cret-value-never-shown"],
            secretNames: ["API_KEY", "DB_PASSWORD"],
            schedules: schedules ?? [
                schedule("nightly_report", "cron", "0 3 * * *", zone: "Europe/Paris"), schedule("poll", "every", "5m"),
                schedule("odd", "every", "45m"),
            ],
            recordsURL: "https://cats.example.com"
        )
    }

    static func kinds(_ manifests: KubernetesManifests) -> [String] { manifests.documents.compactMap { $0["kind"]?.string } }

    @Test func kubernetesGivesADeploymentAServiceAnAutoscalerAndACronJobPerSchedule() throws {
        let manifests = try KubernetesManifests(Self.release(), target: .kubernetes)
        #expect(Self.kinds(manifests) == ["Deployment", "Service", "HorizontalPodAutoscaler", "CronJob", "CronJob"])
        let service = manifests.documents[1]
        #expect(service["spec"]?["selector"] == manifests.documents[0]["spec"]?["selector"]?["matchLabels"])
        #expect(service["spec"]?["ports"]?[0]?["targetPort"]?.string == "http")
    }

    @Test func scaleBecomesReplicasAndAnAutoscaler() throws {
        let manifests = try KubernetesManifests(Self.release(), target: .kubernetes)
        #expect(manifests.documents[0]["spec"]?["replicas"]?.int == 2)
        let hpa = try #require(manifests.documents.first { $0["kind"]?.string == "HorizontalPodAutoscaler" })
        #expect(hpa["spec"]?["minReplicas"]?.int == 2)
        #expect(hpa["spec"]?["maxReplicas"]?.int == 6)
        #expect(hpa["spec"]?["scaleTargetRef"]?["name"]?.string == "cats")
        #expect(hpa["spec"]?["behavior"]?["scaleDown"]?["stabilizationWindowSeconds"]?.int == 600)
    }

    @Test func scaleToZeroKeepsOneReplicaAndSaysSo() throws {
        let manifests = try KubernetesManifests(Self.release(scale: ScaleSettings(min: 0, max: 1, concurrency: 1, idleSeconds: 60)), target: .kubernetes)
        #expect(manifests.documents[0]["spec"]?["replicas"]?.int == 1)
        #expect(!Self.kinds(manifests).contains("HorizontalPodAutoscaler"))
        #expect(manifests.notes.contains { $0.contains("min 0") })
    }

    @Test func withoutACPULimitThereIsNoAutoscalerAndANoteSaysWhy() throws {
        let manifests = try KubernetesManifests(Self.release(limits: AppLimits(memory: 1 << 30)), target: .kubernetes)
        #expect(!Self.kinds(manifests).contains("HorizontalPodAutoscaler"))
        #expect(manifests.notes.contains { $0.contains("no HorizontalPodAutoscaler") })
        let long = try KubernetesManifests(Self.release(scale: ScaleSettings(min: 1, max: 4, concurrency: 1, idleSeconds: 86_400)), target: .kubernetes)
        #expect(long.documents[2]["spec"]?["behavior"]?["scaleDown"]?["stabilizationWindowSeconds"]?.int == 3600)
    }

    @Test func limitsBecomeResourcesAndASizedTmp() throws {
        let manifests = try KubernetesManifests(Self.release(), target: .kubernetes)
        let pod = try #require(manifests.documents[0]["spec"]?["template"]?["spec"])
        let web = try #require(pod["containers"]?.named("web"))
        let amounts: YAMLNode = ["cpu": "500m", "memory": "256Mi"]
        #expect(web["resources"] == ["requests": amounts, "limits": amounts])
        #expect(pod["volumes"]?.named("tmp")?["emptyDir"] == ["medium": "Memory", "sizeLimit": "32Mi"])
        #expect(web["volumeMounts"]?[0]?["mountPath"]?.string == "/tmp")
        #expect(web["securityContext"]?["readOnlyRootFilesystem"] == true)
        #expect(web["securityContext"]?["runAsNonRoot"] == true)
        #expect(pod["automountServiceAccountToken"] == false)
        #expect(manifests.notes.contains { $0.contains("64 processes") })
        let unlimited = try KubernetesManifests(Self.release(limits: AppLimits()), target: .kubernetes)
        #expect(unlimited.documents[0]["spec"]?["template"]?["spec"]?["containers"]?[0]?["resources"] == nil)
    }

    @Test func quantitiesUseTheLargestBinaryUnitThatDividesThem() throws {
        let sizes = [(512 << 20, "512Mi"), (1 << 30, "1Gi"), (1536 << 20, "1536Mi"), (1000, "1000"), (64 << 10, "64Ki")]
        for (bytes, quantity) in sizes {
            let manifests = try KubernetesManifests(Self.release(limits: AppLimits(memory: bytes)), target: .kubernetes)
            let limits = manifests.documents[0]["spec"]?["template"]?["spec"]?["containers"]?[0]?["resources"]?["limits"]
            #expect(limits?["memory"]?.string == quantity)
        }
    }

    @Test func theWebContainerIsCheckedOnHealth() throws {
        let web = try #require(try KubernetesManifests(Self.release(), target: .kubernetes).documents[0]["spec"]?["template"]?["spec"]?["containers"]?[0])
        for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
            #expect(web[probe]?["httpGet"] == ["path": "/_/health", "port": "http"], "\(probe)")
        }
        #expect(web["ports"]?[0] == ["name": "http", "containerPort": 8080, "protocol": "TCP"])
    }

    @Test func configIsEnvAndSecretsAreReferencesNeverValues() throws {
        let manifests = try KubernetesManifests(Self.release(), target: .kubernetes)
        let env = try #require(manifests.documents[0]["spec"]?["template"]?["spec"]?["containers"]?[0]?["env"])
        #expect(env[0] == ["name": "PORT", "value": "8080"])
        #expect(env.named("GREETING")?["value"]?.string == "a: b\n- c")
        #expect(env.items.filter { $0["name"]?.string == "PORT" }.count == 1)
        #expect(manifests.notes.contains { $0.contains("\"PORT\"") })
        for key in ["API_KEY", "DB_PASSWORD", "GUST_RECORDS_TOKEN"] {
            #expect(env.named(key)?["valueFrom"] == ["secretKeyRef": ["name": "cats-secrets", "key": .string(key)]], "\(key)")
        }
        #expect(env.named("GUST_RECORDS_URL")?["value"]?.string == "https://cats.example.com")
        #expect(!manifests.render().contains("s3cret-value-never-shown"))
        #expect(manifests.secretKeys == ["API_KEY", "DB_PASSWORD", "GUST_RECORDS_TOKEN"])
        #expect(manifests.secretHint == "kubectl create secret generic cats-secrets --from-literal=API_KEY=... --from-literal=DB_PASSWORD=... --from-literal=GUST_RECORDS_TOKEN=...")
    }

    @Test func schedulesBecomeCronJobsThatNeverOverlap() throws {
        let manifests = try KubernetesManifests(Self.release(), target: .kubernetes)
        let jobs = manifests.documents.filter { $0["kind"]?.string == "CronJob" }
        #expect(jobs.map { $0["metadata"]?["name"]?.string } == [KubernetesName.label("cats-nightly_report", maxLength: 52), "cats-poll"])
        let nightly = jobs[0], poll = jobs[1]
        #expect(nightly["spec"]?["schedule"]?.string == "0 3 * * *")
        #expect(nightly["spec"]?["timeZone"]?.string == "Europe/Paris")
        #expect(poll["spec"]?["schedule"]?.string == "*/5 * * * *")
        #expect(poll["spec"]?["timeZone"]?.string == "UTC")
        for job in jobs {
            #expect(job["spec"]?["concurrencyPolicy"]?.string == "Forbid")
            #expect(job["spec"]?["jobTemplate"]?["spec"]?["backoffLimit"]?.int == 0)
            let pod = job["spec"]?["jobTemplate"]?["spec"]?["template"]?["spec"]
            #expect(pod?["restartPolicy"]?.string == "Never")
            #expect(pod?["containers"]?[0]?["readinessProbe"] == nil)
            #expect(pod?["containers"]?[0]?["env"] == manifests.documents[0]["spec"]?["template"]?["spec"]?["containers"]?[0]?["env"])
        }
        #expect(nightly["spec"]?["jobTemplate"]?["spec"]?["template"]?["spec"]?["containers"]?[0]?["args"] == ["schedule", "nightly_report"])
        #expect(nightly["metadata"]?["annotations"]?["gust/schedule"]?.string == "nightly_report")
        // every 45m has no cron form: no CronJob, and the note names it.
        #expect(manifests.notes.contains { $0.contains("\"odd\"") && $0.contains("no CronJob") })
    }

    @Test func aHostileScheduleNameIsPassedExactlyAndCannotBreakOutOfItsComment() throws {
        let name = "x\n---\nkind: Secret # ' \" !!python"
        let manifests = try KubernetesManifests(Self.release(schedules: [
            Self.schedule(name, "every", "1m"), Self.schedule(name + "2", "every", "7m"), Self.schedule("clear", "cron", "\u{1B}[2J\nrm -rf"),
        ]), target: .kubernetes)
        #expect(manifests.notes.contains { $0.contains(#"\u001B[2J\nrm"#) }, "\(manifests.notes)")
        #expect(!manifests.notes.contains { $0.contains("\u{1B}") || $0.contains("\n") })
        let job = try #require(manifests.documents.first { $0["kind"]?.string == "CronJob" })
        #expect(job["spec"]?["jobTemplate"]?["spec"]?["template"]?["spec"]?["containers"]?[0]?["args"] == ["schedule", .string(name)])
        #expect(KubernetesName.isLabel(job["metadata"]?["name"]?.string ?? ""))
        let text = manifests.render()
        let comments = text.split(separator: "\n").prefix { $0.hasPrefix("#") }
        #expect(comments.count == 1 + manifests.notes.count)
        #expect(try RealYAMLReader.mismatch(text, manifests.documents) == nil)
    }

    @Test func theWholeOutputReadsBackAsTheTree() throws {
        for target in [ManifestTarget.kubernetes, .knative] {
            let manifests = try KubernetesManifests(Self.release(namespace: "prod"), target: target)
            #expect(try RealYAMLReader.mismatch(manifests.render(), manifests.documents) == nil)
            for document in manifests.documents {
                #expect(document["metadata"]?["namespace"]?.string == "prod")
                #expect(document["metadata"]?["labels"]?["app.kubernetes.io/managed-by"]?.string == "gust")
                #expect(document["metadata"]?["labels"]?["app.kubernetes.io/version"]?.string == "v3")
            }
        }
    }

    @Test func schedulesOfAnotherReleaseAreNotExportedAndTheNoteSaysSo() throws {
        var release = Self.release(schedules: [])
        release.schedulesNote = "the schedules gustd knows are v4's"
        let manifests = try KubernetesManifests(release, target: .kubernetes)
        #expect(!Self.kinds(manifests).contains("CronJob"))
        #expect(manifests.notes.contains("the schedules gustd knows are v4's"))
    }

    @Test func knativeGivesOneServiceThatScalesToZeroByCalls() throws {
        let manifests = try KubernetesManifests(
            Self.release(scale: ScaleSettings(min: 0, max: 8, concurrency: 20, idleSeconds: 120), concurrency: 1), target: .knative
        )
        #expect(Self.kinds(manifests) == ["Service", "CronJob", "CronJob"])
        let service = manifests.documents[0]
        #expect(service["apiVersion"]?.string == "serving.knative.dev/v1")
        let template = try #require(service["spec"]?["template"])
        #expect(template["metadata"]?["annotations"] == [
            "autoscaling.knative.dev/min-scale": "0", "autoscaling.knative.dev/max-scale": "8",
            "autoscaling.knative.dev/scale-to-zero-pod-retention-period": "120s",
        ])
        #expect(template["spec"]?["containerConcurrency"]?.int == 1)
        #expect(manifests.notes.contains { $0.contains("containerConcurrency is 1") })
        let web = try #require(template["spec"]?["containers"]?[0])
        #expect(web["env"]?.named("PORT") == nil)
        #expect(web["ports"]?[0] == ["name": "http1", "containerPort": 8080])
        #expect(web["readinessProbe"]?["httpGet"] == ["path": "/_/health"])
        #expect(web["startupProbe"] == nil)
    }

    @Test func knativeKeepsWarmInstancesWithoutARetentionPeriod() throws {
        let manifests = try KubernetesManifests(Self.release(), target: .knative)
        let annotations = manifests.documents[0]["spec"]?["template"]?["metadata"]?["annotations"]
        #expect(annotations?["autoscaling.knative.dev/min-scale"]?.string == "2")
        #expect(annotations?["autoscaling.knative.dev/scale-to-zero-pod-retention-period"] == nil)
        #expect(manifests.documents[0]["spec"]?["template"]?["spec"]?["containerConcurrency"]?.int == 10)
    }

    @Test func theDefaultImageIsALocalNameThatNeverResolvesToAPublicRegistry() {
        #expect(ExportedRelease(app: Self.app, version: 7).image == "localhost/gust/cats:v7")
    }
}
