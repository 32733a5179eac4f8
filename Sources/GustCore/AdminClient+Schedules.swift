import Foundation

extension AdminClient {
    /// Asks gustd to run the schedule `name` of the app's live release now and
    /// waits for the run to end (within the function time limit). Returns why
    /// the run failed, or nil; throws if it could not run (no such schedule,
    /// one running already, gustd not running).
    public func runSchedule(app: AppName, name: String) throws -> String? {
        let body = try JSONSerialization.data(withJSONObject: ["app": app.rawValue, "schedule": name])
        var answer: [String: Any] = [:]
        do {
            try exchange("POST", "/v1/schedules/run", body: body) { line in
                if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] { answer = object }
            }
        } catch let error as GustError {
            if let message = answer["error"] as? String { throw GustError(message, code: answer["code"] as? Int ?? error.code) }
            throw error
        }
        if answer["ok"] as? Bool == true { return nil }
        return answer["error"] as? String ?? "the run did not say how it ended"
    }

    /// Waits until what the app's instances have written so far is in its log (gustd answers
    /// within a second). False when gustd cannot say (not running, or older than this call).
    public func awaitOutputDelivered(app: AppName) -> Bool {
        var delivered = false
        try? exchange("POST", "/v1/apps/\(app.rawValue)/output-delivered", body: Data()) { line in
            if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] { delivered = object["ok"] as? Bool == true }
        }
        return delivered
    }
}
