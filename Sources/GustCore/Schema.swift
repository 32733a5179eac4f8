/// The store's schema, as an append-only list of migrations.
///
/// `PRAGMA user_version` records how many have run. Never edit a migration that
/// has shipped: add the next one.
enum Schema {
    static let migrations: [String] = [
        // 1: apps and their releases.
        """
        CREATE TABLE apps (
            name         TEXT PRIMARY KEY,
            created_at   REAL NOT NULL,
            live_version INTEGER,
            private      INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE releases (
            app           TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
            version       INTEGER NOT NULL,
            status        TEXT NOT NULL CHECK (status IN ('built', 'failed')),
            commit_id     TEXT,
            buildpack     TEXT,
            artifact      TEXT,
            artifact_size INTEGER,
            process       TEXT,
            build_seconds REAL,
            created_at    REAL NOT NULL,
            description   TEXT NOT NULL DEFAULT '',
            rollback_of   INTEGER,
            config        TEXT NOT NULL DEFAULT '{}',
            error         TEXT,
            log           TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (app, version)
        );
        """,
        // 2: config vars (the desired config; each release keeps a snapshot) and app tokens.
        """
        CREATE TABLE config_vars (
            app    TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
            name   TEXT NOT NULL,
            value  TEXT NOT NULL,
            secret INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (app, name)
        );
        CREATE TABLE tokens (
            id           INTEGER PRIMARY KEY AUTOINCREMENT,
            app          TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
            hash         TEXT NOT NULL UNIQUE,
            description  TEXT NOT NULL DEFAULT '',
            created_at   REAL NOT NULL,
            expires_at   REAL,
            last_used_at REAL,
            revoked_at   REAL
        );
        ALTER TABLE releases ADD COLUMN secret_names TEXT NOT NULL DEFAULT '[]';
        """,
        // 3: the schedules gustd runs (an `every` keeps its anchor across deploys) and their recent runs.
        """
        CREATE TABLE schedules (
            app       TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
            name      TEXT NOT NULL,
            kind      TEXT NOT NULL CHECK (kind IN ('every', 'cron')),
            spec      TEXT NOT NULL,
            params    TEXT,
            anchor    REAL NOT NULL,
            time_zone TEXT NOT NULL DEFAULT 'UTC',
            release   INTEGER NOT NULL,
            next_run  REAL,
            PRIMARY KEY (app, name)
        );
        CREATE TABLE schedule_runs (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
            schedule   TEXT NOT NULL,
            release    INTEGER NOT NULL,
            started_at REAL NOT NULL,
            seconds    REAL,
            status     TEXT NOT NULL CHECK (status IN ('running', 'ok', 'error', 'skipped')),
            error      TEXT
        );
        CREATE INDEX schedule_runs_by_schedule ON schedule_runs (app, schedule, id);
        """,
        // 4: SSH keys (the source of ssh/authorized_keys) and which apps a non-admin key may use.
        """
        CREATE TABLE ssh_keys (
            name        TEXT PRIMARY KEY,
            type        TEXT NOT NULL,
            blob        TEXT NOT NULL,
            fingerprint TEXT NOT NULL UNIQUE,
            admin       INTEGER NOT NULL DEFAULT 0,
            added_at    REAL NOT NULL
        );
        CREATE TABLE ssh_key_apps (
            key TEXT NOT NULL REFERENCES ssh_keys(name) ON DELETE CASCADE,
            app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
            PRIMARY KEY (key, app)
        );
        """,
        // 5: scale rules per app (`gust scale`); an app without a row has the standard ones.
        """
        CREATE TABLE app_scale (
            app          TEXT PRIMARY KEY REFERENCES apps(name) ON DELETE CASCADE,
            min          INTEGER NOT NULL,
            max          INTEGER NOT NULL,
            concurrency  INTEGER NOT NULL,
            idle_seconds INTEGER NOT NULL
        );
        """,
        // 6: resource limits per app (`gust limits`; NULL: gustd's default), gustd's defaults as it last
        // started with them (for `gust limits` to show), and the ceilings scoped keys stay under.
        """
        CREATE TABLE app_limits (
            app        TEXT PRIMARY KEY REFERENCES apps(name) ON DELETE CASCADE,
            memory     INTEGER,
            cpu_millis INTEGER,
            pids       INTEGER,
            tmp        INTEGER,
            disk       INTEGER
        );
        CREATE TABLE limit_profiles (
            name          TEXT PRIMARY KEY CHECK (name IN ('defaults', 'ceilings')),
            memory        INTEGER,
            cpu_millis    INTEGER,
            pids          INTEGER,
            tmp           INTEGER,
            disk          INTEGER,
            max_instances INTEGER
        );
        """,
        // 7: log drains (`gust drains`): where gustd forwards an app's log lines.
        """
        CREATE TABLE drains (
            id            TEXT PRIMARY KEY,
            app           TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
            url           TEXT NOT NULL,
            allow_private INTEGER NOT NULL DEFAULT 0,
            created_at    REAL NOT NULL,
            UNIQUE (app, url)
        );
        """,
        // 8: an app's own domains (`gust domains`) with the state of their certificates as gustd last
        // saw it, and what gustd last started with that the CLI checks against (its --domain).
        """
        CREATE TABLE domains (
            name            TEXT PRIMARY KEY,
            app             TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
            created_at      REAL NOT NULL,
            cert_status     TEXT NOT NULL DEFAULT 'pending' CHECK (cert_status IN ('pending', 'issued', 'failed')),
            cert_error      TEXT,
            cert_expires_at REAL,
            cert_serial     TEXT,
            renew_requested INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX domains_by_app ON domains (app);
        CREATE TABLE daemon_settings (
            name  TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """,
        // 9: console tokens (`gust tokens create --console`; only their hash), the apps a scoped one may
        // see, and the activity log: who did what to which app, and from where.
        """
        CREATE TABLE console_tokens (
            id           INTEGER PRIMARY KEY AUTOINCREMENT,
            hash         TEXT NOT NULL UNIQUE,
            description  TEXT NOT NULL DEFAULT '',
            admin        INTEGER NOT NULL DEFAULT 0,
            created_at   REAL NOT NULL,
            expires_at   REAL,
            last_used_at REAL,
            revoked_at   REAL
        );
        CREATE TABLE console_token_apps (
            token INTEGER NOT NULL REFERENCES console_tokens(id) ON DELETE CASCADE,
            app   TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
            PRIMARY KEY (token, app)
        );
        CREATE TABLE activity (
            id     INTEGER PRIMARY KEY AUTOINCREMENT,
            at     REAL NOT NULL,
            app    TEXT,
            actor  TEXT NOT NULL,
            source TEXT NOT NULL,
            action TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX activity_by_app ON activity (app, id);
        """,
        // 10: the stack each release was built on and runs on (`Stack.reference`); NULL is the host's system.
        "ALTER TABLE releases ADD COLUMN stack TEXT;",
        // 11: the web console's sessions, so that a gustd restart signs nobody out: only a hash of each
        // id (the cookie), the console token it belongs to (revoking the token deletes them), its expiry.
        """
        CREATE TABLE console_sessions (
            hash       TEXT PRIMARY KEY,
            token      INTEGER NOT NULL REFERENCES console_tokens(id) ON DELETE CASCADE,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL
        );
        CREATE INDEX console_sessions_by_token ON console_sessions (token);
        """,
        // 12: one-time work done on this store, by name (`Store.sealedMark`: it has been scanned for
        // plaintext secrets), so that an open does not do it again.
        "CREATE TABLE store_marks (name TEXT PRIMARY KEY) WITHOUT ROWID;",
        // 13: whether a release's instances are handed their listening socket by gustd and see their
        // socket directory read-only (`Release.passesListener`). Releases recorded before are not:
        // their runtime binds its own socket, which it could not do in a read-only directory.
        "ALTER TABLE releases ADD COLUMN passes_listener INTEGER NOT NULL DEFAULT 0;",
    ]

    static func migrate(_ db: Database) throws {
        // Nearly every open (a command, a hook) finds the schema current: a read tells, without
        // the write lock the migration's transaction takes, which would queue every open behind
        // gustd's and each other's writes.
        guard try version(db) < migrations.count else { return }
        try db.transaction {
            let current = try version(db)  // again, under the lock: another process may have migrated meanwhile
            guard current < migrations.count else { return }
            for index in current..<migrations.count {
                try db.execute(migrations[index])
            }
            try db.execute("PRAGMA user_version = \(migrations.count)")
        }
    }

    private static func version(_ db: Database) throws -> Int {
        try db.query("PRAGMA user_version").first?.int("user_version") ?? 0
    }
}
