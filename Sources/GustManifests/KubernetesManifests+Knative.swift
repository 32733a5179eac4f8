import GustCore

/// The Knative shape of the app: one `serving.knative.dev/v1` Service whose
/// revisions scale between `min` (zero allowed) and `max` on calls in flight,
/// `containerConcurrency` calls each, as gustd scales instances.
extension KubernetesManifests {
    func knativeService() -> YAMLNode {
        let scale = release.scale
        var annotations: [YAMLNode.Entry] = [
            .init("autoscaling.knative.dev/min-scale", .string(String(scale.min))),
            .init("autoscaling.knative.dev/max-scale", .string(String(scale.max))),
        ]
        if scale.min == 0 {
            // gustd's idle time: how long the last instance outlives its last call.
            annotations.append(.init("autoscaling.knative.dev/scale-to-zero-pod-retention-period", .string("\(scale.idleSeconds)s")))
        }
        var template: [YAMLNode.Entry] = [.init("containerConcurrency", .int(release.concurrencyPerInstance))]
        if case .map(let pod) = podSpec(containers: [container(name: "web")]) { template += pod }
        return [
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "metadata": metadata(name: name, component: "web"),
            "spec": [
                "template": [
                    "metadata": ["labels": labels(component: "web"), "annotations": .map(annotations)],
                    "spec": .map(template),
                ],
            ],
        ]
    }
}
