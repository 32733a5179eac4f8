public import GustCore

/// The manifests of one release for a cluster: what `gust releases export
/// APP vN --kubernetes [--knative]` prints.
///
/// Why a value rather than a printer: the command prints `render()` to stdout
/// (for `kubectl apply -f -`) and `notes` and `secretHint` to stderr, and the
/// tests look at the documents as a tree. Nothing here reads the store or the
/// clock, so one release always gives the same text.
public struct KubernetesManifests: Sendable {
    /// The objects, in the order `kubectl apply` should meet them.
    public var documents: [YAMLNode]
    /// What did not carry over, or changed on the way: printed to stderr and atop the YAML as
    /// comments, each on one line with no control characters (a schedule's name or spec may hold any).
    public var notes: [String]
    /// The Secret the secret config vars and the records token are read from.
    public var secretName: String
    /// The keys that Secret must hold, sorted; empty when the app needs none.
    public var secretKeys: [String]

    let release: ExportedRelease
    let target: ManifestTarget
    /// The Deployment's, Service's and Knative Service's name.
    let name: String

    public init(_ release: ExportedRelease, target: ManifestTarget) throws(GustError) {
        self.release = release
        self.target = target
        name = KubernetesName.label(release.app.rawValue)
        secretName = KubernetesName.label(release.app.rawValue + "-secrets")
        secretKeys = release.secretNames.sorted() + (release.recordsURL == nil ? [] : [ExportedRelease.recordsTokenKey])
        documents = []
        notes = []
        switch target {
        case .kubernetes:
            documents.append(deployment())
            documents.append(service())
            if let autoscaler = horizontalAutoscaler() { documents.append(autoscaler) }
        case .knative:
            documents.append(knativeService())
        }
        let jobs = try cronJobs()
        documents += jobs.documents
        notes = (environmentNotes() + scaleNotes() + jobs.notes + carriedNotes()).map(YAMLNode.escapingControls)
    }

    /// The YAML stream: a comment naming the release and each note, then the documents.
    public func render() -> String {
        var header = ["# \(target == .knative ? "Knative" : "Kubernetes") manifests of \(release.app) v\(release.version), from `gust releases export`."]
        header += notes.map { "# Note: " + $0 }
        return header.joined(separator: "\n") + "\n" + YAMLNode.stream(documents)
    }

    /// The `kubectl create secret` line that makes the Secret, with placeholders; nil when no key is needed.
    public var secretHint: String? {
        guard !secretKeys.isEmpty else { return nil }
        let namespace = release.namespace.map { " --namespace \($0)" } ?? ""
        return "kubectl create secret generic \(secretName)\(namespace) "
            + secretKeys.map { "--from-literal=\($0)=..." }.joined(separator: " ")
    }

    /// `app.kubernetes.io/*` labels; `component` is `web` or `schedule`.
    func labels(component: String) -> YAMLNode {
        [
            "app.kubernetes.io/name": .string(name),
            "app.kubernetes.io/instance": .string(name),
            "app.kubernetes.io/version": .string("v\(release.version)"),
            "app.kubernetes.io/component": .string(component),
            "app.kubernetes.io/managed-by": "gust",
        ]
    }

    /// What a Deployment's selector and its Service match: not the version, which changes with every export.
    var selector: YAMLNode {
        ["app.kubernetes.io/name": .string(name), "app.kubernetes.io/component": "web"]
    }

    /// `name`, `namespace` when given, `labels`, and `annotations` when there are any.
    func metadata(name: String, component: String, annotations: [YAMLNode.Entry] = []) -> YAMLNode {
        var entries = [YAMLNode.Entry("name", .string(name))]
        if let namespace = release.namespace { entries.append(.init("namespace", .string(namespace))) }
        entries.append(.init("labels", labels(component: component)))
        if !annotations.isEmpty { entries.append(.init("annotations", .map(annotations))) }
        return .map(entries)
    }

    /// Limits that have no Kubernetes field.
    private func carriedNotes() -> [String] {
        var notes: [String] = []
        if let pids = release.limits.pids {
            notes.append("the limit of \(pids) processes per instance is not set: Kubernetes sets pid limits per node (kubelet podPidsLimit), not per pod.")
        }
        if release.limits.disk != nil {
            notes.append("the disk limit is not carried over: the record store stays on the Gust server, and the container's only writable place is /tmp.")
        }
        return notes
    }
}
