import GustCore

/// The plain-Kubernetes shape of the app: a Deployment of `min` replicas (at
/// least one), a ClusterIP Service in front, and a HorizontalPodAutoscaler up
/// to `max` when the app may grow and has a CPU limit to measure against.
extension KubernetesManifests {
    /// Plain Kubernetes does not scale to zero: `min 0` keeps one replica.
    var replicas: Int { max(release.scale.min, 1) }

    /// Kubernetes caps the autoscaler's scale-down window at an hour.
    static let maxStabilizationSeconds = 3600

    /// The CPU use, in percent of the request, at which the autoscaler adds a replica.
    static let targetCPUUtilization = 70

    func deployment() -> YAMLNode {
        [
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata(name: name, component: "web"),
            "spec": [
                "replicas": .int(replicas),
                "selector": ["matchLabels": selector],
                "template": [
                    "metadata": ["labels": labels(component: "web")],
                    "spec": podSpec(containers: [container(name: "web")]),
                ],
            ],
        ]
    }

    func service() -> YAMLNode {
        [
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(name: name, component: "web"),
            "spec": [
                "type": "ClusterIP",
                "selector": selector,
                "ports": [["name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"]],
            ],
        ]
    }

    /// Nil when the app cannot grow (`max` ≤ replicas) or has no CPU request for the autoscaler to measure.
    func horizontalAutoscaler() -> YAMLNode? {
        guard release.scale.max > replicas, release.limits.cpuMillis != nil else { return nil }
        return [
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": metadata(name: name, component: "web"),
            "spec": [
                "scaleTargetRef": ["apiVersion": "apps/v1", "kind": "Deployment", "name": .string(name)],
                "minReplicas": .int(replicas),
                "maxReplicas": .int(release.scale.max),
                "metrics": [[
                    "type": "Resource",
                    "resource": ["name": "cpu", "target": ["type": "Utilization", "averageUtilization": .int(Self.targetCPUUtilization)]],
                ]],
                "behavior": [
                    "scaleDown": ["stabilizationWindowSeconds": .int(min(release.scale.idleSeconds, Self.maxStabilizationSeconds))],
                ],
            ],
        ]
    }

    /// The pod around a container: no service-account token (the app never talks to the cluster's API), a private `/tmp`.
    func podSpec(containers: [YAMLNode], restartPolicy: String? = nil) -> YAMLNode {
        var entries: [YAMLNode.Entry] = []
        if let restartPolicy { entries.append(.init("restartPolicy", .string(restartPolicy))) }
        entries.append(.init("automountServiceAccountToken", false))
        entries.append(.init("containers", .list(containers)))
        entries.append(.init("volumes", [tmpVolume]))
        return .map(entries)
    }

    func scaleNotes() -> [String] {
        let scale = release.scale
        switch target {
        case .knative:
            return release.concurrencyPerInstance >= scale.concurrency ? [] : [
                "containerConcurrency is \(release.concurrencyPerInstance), not the app's concurrency \(scale.concurrency): a Python instance takes one call at a time.",
            ]
        case .kubernetes:
            var notes: [String] = []
            if scale.min == 0 {
                notes.append("min 0 (scale to zero) has no plain-Kubernetes form: the Deployment keeps 1 replica (--knative scales to zero).")
            }
            if scale.max > replicas, release.limits.cpuMillis == nil {
                notes.append("no HorizontalPodAutoscaler: the app has no CPU limit to measure use against, so it stays at \(replicas) replica(s) rather than growing to \(scale.max).")
            }
            if scale.max > replicas, release.limits.cpuMillis != nil {
                notes.append("the HorizontalPodAutoscaler grows the app from \(replicas) to \(scale.max) replicas on CPU use (\(Self.targetCPUUtilization)% of its request), not on calls in flight as gustd does; it needs the cluster's metrics-server.")
            }
            return notes
        }
    }
}
