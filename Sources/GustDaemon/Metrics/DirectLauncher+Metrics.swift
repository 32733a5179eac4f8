/// Cold starts of the direct launcher's instances, by app.
extension DirectLauncher {
    func launchEnded(succeeded: Bool, after duration: Duration) {
        GustMetrics.instanceStart(app, succeeded: succeeded, after: duration)
    }
}
