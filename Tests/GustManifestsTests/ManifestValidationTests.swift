import Foundation
import GustCore
import GustManifests
import GustTesting
import Testing

/// The manifests as the real checkers see them: kubernetes-validate (PyPI,
/// pinned by scripts/install-deps.sh) for Kubernetes' own kinds, strict, for
/// the oldest and the newest Kubernetes it knows that we support; and Knative's
/// published CRD schema (vendored in Data/, see its README) for the Knative
/// Service, through python3-jsonschema. Each checker is shown to reject a
/// broken manifest, so a pass means something.
@Suite(.serialized) struct ManifestValidationTests {
    /// Kubernetes versions the manifests must pass: CronJob `timeZone` is GA from 1.27, the newest is what the pinned tool knows.
    static let kubernetesVersions = ["1.30.0", "1.37.0"]

    static let data = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Data")

    /// kubernetes-validate's verdict on `yaml`, per Kubernetes version: nil when it passed, else its output.
    static func kubernetesValidate(_ yaml: String) throws -> String? {
        let file = ScratchDirectory.current.appendingPathComponent("manifests-\(UUID().uuidString.prefix(6)).yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        var failures: [String] = []
        for version in kubernetesVersions {
            let result = try Command.run("kubernetes-validate", ["--strict", "--quiet", "-k", version, file.path], timeout: 120)
            if result.status != 0 { failures.append("\(version): \(result.output)") }
        }
        return failures.isEmpty ? nil : failures.joined(separator: "\n")
    }

    /// Knative's CRD schema's verdict on the Knative Services in `yaml`: nil when they passed.
    static func knativeValidate(_ yaml: String) throws -> String? {
        let result = try Command.run(
            "python3", [data.appendingPathComponent("validate_knative.py").path, data.appendingPathComponent("knative-serving-service-crd.yaml").path],
            input: yaml, timeout: 120
        )
        return result.status == 0 ? nil : result.output
    }

    /// Every setting in use, plus hostile config and schedule names.
    static func release() -> ExportedRelease {
        var release = KubernetesManifestsTests.release(namespace: "prod")
        release.config["WEIRD"] = "a: b\n- c !!python/object '\"\u{1B}"
        release.schedules.append(KubernetesManifestsTests.schedule("Send Mail!\n", "cron", "@hourly"))
        return release
    }

    @Test(.scratchDirectory) func kubernetesManifestsPassKubernetesValidate() throws {
        let manifests = try KubernetesManifests(Self.release(), target: .kubernetes)
        #expect(Set(KubernetesManifestsTests.kinds(manifests)) == ["Deployment", "Service", "HorizontalPodAutoscaler", "CronJob"])
        let verdict = try Self.kubernetesValidate(manifests.render())
        #expect(verdict == nil, "\(verdict ?? "")")
        // The fewest settings too: no limits, no scale room, no schedules.
        let bare = try KubernetesManifests(
            ExportedRelease(app: try AppName("a-"), version: 1, scale: ScaleSettings(min: 0, max: 1, concurrency: 1, idleSeconds: 1)),
            target: .kubernetes
        )
        let bareVerdict = try Self.kubernetesValidate(bare.render())
        #expect(bareVerdict == nil, "\(bareVerdict ?? "")")
    }

    @Test(.scratchDirectory) func kubernetesValidateRejectsABrokenManifest() throws {
        let text = try KubernetesManifests(Self.release(), target: .kubernetes).render()
        for (good, broken) in [("replicas: 2", "replicas: two"), ("concurrencyPolicy: Forbid", "concurrencyPolicy: Forbid\n  concurencyPolicy: Forbid"),
                               ("        - name: tmp\n          mountPath: /tmp", "        - name: tmp\n          mountPath: [/tmp]")] {
            #expect(text.contains(good), "\(good)")
            #expect(try Self.kubernetesValidate(text.replacingOccurrences(of: good, with: broken)) != nil, "\(broken) passed")
        }
    }

    @Test(.scratchDirectory) func theKnativeServicePassesKnativesSchemaAndItsCronJobsKubernetesValidate() throws {
        let manifests = try KubernetesManifests(Self.release(), target: .knative)
        let text = manifests.render()
        let knative = try Self.knativeValidate(text)
        #expect(knative == nil, "\(knative ?? "")")
        // kubernetes-validate warns of the Knative kind it does not know and checks the CronJobs.
        let kubernetes = try Self.kubernetesValidate(text)
        #expect(kubernetes == nil, "\(kubernetes ?? "")")
    }

    @Test func knativesSchemaRejectsABrokenService() throws {
        let text = try KubernetesManifests(Self.release(), target: .knative).render()
        for (good, broken) in [("containerConcurrency: 10", "containerConcurrency: ten"), ("containerConcurrency: 10", "containerConcurency: 10"),
                               ("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: \"yes\"")] {
            #expect(text.contains(good), "\(good)")
            #expect(try Self.knativeValidate(text.replacingOccurrences(of: good, with: broken)) != nil, "\(broken) passed")
        }
        // And a stream with no Knative Service in it is not a pass.
        #expect(try Self.knativeValidate(try KubernetesManifests(Self.release(), target: .kubernetes).render()) != nil)
    }
}
