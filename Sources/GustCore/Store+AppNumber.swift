extension Store {
    /// A small number that names the app as long as it exists (SQLite's rowid of
    /// its row): the sandbox gives each app the host uid `range start + number`.
    public func appNumber(_ name: AppName) throws -> Int {
        guard let number = try db.query("SELECT rowid FROM apps WHERE name = ?", [.text(name.rawValue)]).first?.int("rowid") else {
            throw GustError.notFound("No app named '\(name)'.")
        }
        return number
    }
}
