/// Which engine the manifests are for.
///
/// Why two: a plain cluster runs a Deployment behind a Service (with a
/// HorizontalPodAutoscaler when the app may grow); a Knative cluster runs one
/// Knative Service that scales by requests, to zero when the app allows it.
/// Printing both would run the app twice, so `--knative` prints the Knative
/// Service instead of the Deployment, Service and autoscaler. The CronJobs
/// are the same for both.
public enum ManifestTarget: Sendable, Equatable {
    case kubernetes
    case knative
}
