import GustCore

/// The container every object runs: the release's image with its config,
/// limits, probes and a private `/tmp`, as Gust's sandbox runs an instance.
extension KubernetesManifests {
    /// Env names the target sets itself: Knative rejects a Service that sets them.
    var reservedNames: Set<String> {
        target == .knative ? ["PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"] : ["PORT"]
    }

    /// `PORT` (plain Kubernetes only: Knative sets it), the config vars by name,
    /// the secret ones from the Secret, then the records URL and token.
    var environment: YAMLNode {
        var entries: [YAMLNode] = []
        if target == .kubernetes { entries.append(["name": "PORT", "value": .string(String(ExportedRelease.port))]) }
        // A secret's value never leaves the store, even if a caller handed it over in `config`.
        let secret = Set(release.secretNames)
        for (key, value) in release.config.sorted(by: { $0.key < $1.key }) where !reservedNames.contains(key) && !secret.contains(key) {
            entries.append(["name": .string(key), "value": .string(value)])
        }
        for key in release.secretNames.sorted() where !reservedNames.contains(key) {
            entries.append(fromSecret(key))
        }
        if let url = release.recordsURL {
            entries.append(["name": "GUST_RECORDS_URL", "value": .string(url)])
            entries.append(fromSecret(ExportedRelease.recordsTokenKey))
        }
        return .list(entries)
    }

    private func fromSecret(_ key: String) -> YAMLNode {
        ["name": .string(key), "valueFrom": ["secretKeyRef": ["name": .string(secretName), "key": .string(key)]]]
    }

    func environmentNotes() -> [String] {
        let skipped = Set(release.config.keys).union(release.secretNames).filter(reservedNames.contains).sorted()
        return skipped.map { key in
            "the config var \(YAMLNode.quoted(key)) is left out: \(target == .knative ? "Knative" : "the export") sets it (the container listens on \(ExportedRelease.port))."
        }
    }

    /// Requests equal to the limits: Gust's limits are what an instance gets, no more and no less.
    var resources: YAMLNode? {
        var amounts: [YAMLNode.Entry] = []
        if let cpu = release.limits.cpuMillis { amounts.append(.init("cpu", .string("\(cpu)m"))) }
        if let memory = release.limits.memory { amounts.append(.init("memory", .string(Self.quantity(bytes: memory)))) }
        guard !amounts.isEmpty else { return nil }
        return ["requests": .map(amounts), "limits": .map(amounts)]
    }

    /// `512Mi`, `1Gi`, `1536Mi`; bytes when no binary unit divides them.
    static func quantity(bytes: Int) -> String {
        for (unit, shift) in [("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)] where bytes % (1 << shift) == 0 {
            return "\(bytes >> shift)\(unit)"
        }
        return String(bytes)
    }

    /// GET `/_/health`: on the named port for a Deployment, on the one port for Knative (which names none).
    private func healthCheck(periodSeconds: Int, failureThreshold: Int) -> YAMLNode {
        var get: [YAMLNode.Entry] = [.init("path", .string(ExportedRelease.healthPath))]
        if target == .kubernetes { get.append(.init("port", "http")) }
        return ["httpGet": .map(get), "periodSeconds": .int(periodSeconds), "failureThreshold": .int(failureThreshold)]
    }

    /// The read-only root and the private, size-capped `/tmp` of Gust's sandbox. `runAsNonRoot`
    /// holds because the image's user is numeric (65534:65534), which the kubelet can check.
    var securityContext: YAMLNode {
        ["allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "runAsNonRoot": true, "capabilities": ["drop": ["ALL"]]]
    }

    var tmpVolume: YAMLNode {
        var emptyDir: [YAMLNode.Entry] = [.init("medium", "Memory")]
        if let tmp = release.limits.tmp { emptyDir.append(.init("sizeLimit", .string(Self.quantity(bytes: tmp)))) }
        return ["name": "tmp", "emptyDir": .map(emptyDir)]
    }

    /// The web container (`args` nil) or a schedule's (`args` ["schedule", NAME]).
    func container(name: String, args: [String]? = nil) -> YAMLNode {
        var entries: [YAMLNode.Entry] = [.init("name", .string(name)), .init("image", .string(release.image))]
        if let args { entries.append(.init("args", .list(args.map(YAMLNode.string)))) }
        if args == nil {
            let port: YAMLNode = target == .knative
                ? ["name": "http1", "containerPort": .int(ExportedRelease.port)]
                : ["name": "http", "containerPort": .int(ExportedRelease.port), "protocol": "TCP"]
            entries.append(.init("ports", [port]))
        }
        entries.append(.init("env", environment))
        if let resources { entries.append(.init("resources", resources)) }
        if args == nil {
            entries.append(.init("readinessProbe", healthCheck(periodSeconds: 5, failureThreshold: 3)))
            entries.append(.init("livenessProbe", healthCheck(periodSeconds: 10, failureThreshold: 3)))
            if target == .kubernetes {
                // A slow first start (a large app importing) is not a dead instance: 60 s before liveness counts.
                entries.append(.init("startupProbe", healthCheck(periodSeconds: 2, failureThreshold: 30)))
            }
        }
        entries.append(.init("securityContext", securityContext))
        entries.append(.init("volumeMounts", [["name": "tmp", "mountPath": "/tmp"]]))
        return .map(entries)
    }
}
