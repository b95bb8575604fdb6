package controller

import (
	"context"
	"fmt"
	"time"
)

// migrations are applied in order, each in its own transaction; the number
// of those applied is kept in schema_migrations. Never edit one that has
// shipped: append a new one. The same statements build SQLite's and
// PostgreSQL's schema: write them in SQL both take, with INTEGER (64 bits:
// PostgreSQL is given BIGINT, see dialect.ddl) only ever as a column type.
var migrations = [][]string{
	1: {
		`CREATE TABLE networks (
			id         TEXT PRIMARY KEY,
			name       TEXT NOT NULL,
			cidr       TEXT NOT NULL,
			mtu        INTEGER NOT NULL,
			auto_allow BOOLEAN NOT NULL,
			revision   INTEGER NOT NULL,
			created    INTEGER NOT NULL
		)`,
		`CREATE TABLE routes (
			network_id TEXT NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
			dest       TEXT NOT NULL,
			via        TEXT NOT NULL,
			PRIMARY KEY (network_id, dest)
		)`,
		`CREATE TABLE members (
			network_id  TEXT NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
			node_id     TEXT NOT NULL,
			identity    TEXT NOT NULL,
			hostname    TEXT NOT NULL,
			public_key  TEXT NOT NULL,
			endpoints   TEXT NOT NULL,
			observed    TEXT NOT NULL,
			listen_port INTEGER NOT NULL,
			state       TEXT NOT NULL,
			address     TEXT,
			requested   TEXT NOT NULL,
			behind_nat  BOOLEAN NOT NULL,
			last_seen   INTEGER NOT NULL,
			version     TEXT NOT NULL,
			created     INTEGER NOT NULL,
			PRIMARY KEY (network_id, node_id),
			UNIQUE (network_id, address)
		)`,
		`CREATE TABLE tokens (
			id          TEXT PRIMARY KEY,
			network_id  TEXT NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
			secret_hash TEXT NOT NULL UNIQUE,
			reusable    BOOLEAN NOT NULL,
			allow       BOOLEAN NOT NULL,
			address     TEXT,
			expires     INTEGER NOT NULL,
			uses        INTEGER NOT NULL,
			note        TEXT NOT NULL,
			used_by     TEXT NOT NULL,
			created     INTEGER NOT NULL
		)`,
		`CREATE INDEX tokens_network ON tokens (network_id)`,
	},
	// Deltas: the revision at which each member last changed as its peers
	// see it, tombstones of deleted members, and the horizon before which
	// no delta can be given (changes before this migration were not
	// tracked, so it starts at each network's current revision).
	2: {
		`ALTER TABLE members ADD COLUMN rev INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE networks ADD COLUMN horizon INTEGER NOT NULL DEFAULT 0`,
		`UPDATE networks SET horizon = revision`,
		`CREATE TABLE tombstones (
			network_id TEXT NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
			node_id    TEXT NOT NULL,
			rev        INTEGER NOT NULL,
			deleted    INTEGER NOT NULL,
			PRIMARY KEY (network_id, node_id)
		)`,
	},
	// The cloud instance that used a token (from its metadata), so that a
	// copy of the token used elsewhere is refused naming where it went.
	3: {
		`ALTER TABLE tokens ADD COLUMN used_instance TEXT NOT NULL DEFAULT ''`,
	},
	// Networks that admit new members only with a join token; the
	// addresses live tokens promise, looked up on every join that gets
	// one from the pool.
	4: {
		`ALTER TABLE networks ADD COLUMN require_token BOOLEAN NOT NULL DEFAULT FALSE`,
		`CREATE INDEX tokens_promised ON tokens (network_id) WHERE address IS NOT NULL`,
	},
	// The identity (key fingerprint) of the node that used a token: a
	// single-use token may be presented again by that identity only, not
	// by anyone whose 40-bit node ID matches.
	5: {
		`ALTER TABLE tokens ADD COLUMN used_identity TEXT NOT NULL DEFAULT ''`,
	},
	// Policy: tags on members (and on the tokens that give them), and
	// each network's ordered rules (services/policy) as a JSON array of
	// rule strings. A network made before rules existed gets the one rule
	// a new network starts with, which lets everything reach everything:
	// the upgrade changes nothing until the admin edits the rules.
	6: {
		`ALTER TABLE members ADD COLUMN tags TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE tokens ADD COLUMN tags TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE networks ADD COLUMN rules TEXT NOT NULL DEFAULT '[]'`,
		`UPDATE networks SET rules = '["allow from any to any"]'`,
	},
	// Failover: a route's backup gateways in order of preference after
	// via (addresses, comma-separated), how long members wait before
	// moving back to a more preferred gateway (ms; 0 the default, -1
	// never), and the targets behind the gateways they probe
	// (control.Probe texts, comma-separated). A route made before has
	// none: it works as it did.
	7: {
		`ALTER TABLE routes ADD COLUMN backups TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE routes ADD COLUMN failback_ms INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE routes ADD COLUMN probes TEXT NOT NULL DEFAULT ''`,
	},
	// Replicas: several controllers on one PostgreSQL. gen counts the
	// writes that changed a network's view (view.go), so that a replica
	// knows whether the view it holds is the database's; rules_rev,
	// peers_rev and conf_rev are the view's markers, kept with the
	// network so that a view loaded from the database (by another
	// replica, or after a restart) gives the deltas the one that wrote
	// them would. A network made before: as if everything changed at its
	// revision, as loading a view assumed until now. controller holds the
	// pin of the key every replica must hold; replicas the address each
	// advertises, for the join strings any of them makes.
	8: {
		`ALTER TABLE networks ADD COLUMN gen INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE networks ADD COLUMN rules_rev INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE networks ADD COLUMN peers_rev INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE networks ADD COLUMN conf_rev INTEGER NOT NULL DEFAULT 0`,
		`UPDATE networks SET rules_rev = revision, peers_rev = revision, conf_rev = revision`,
		`CREATE TABLE controller (
			pin     TEXT NOT NULL,
			created INTEGER NOT NULL
		)`,
		`CREATE TABLE replicas (
			advertise TEXT PRIMARY KEY,
			seen      INTEGER NOT NULL
		)`,
	},
	// People: named admin tokens (access.go), each with a role, a scope
	// (the whole controller, or networks: their IDs, comma-separated,
	// sorted), an expiry (0: never), a revocation (0: none) and when it
	// was last used; only the secret's SHA-256 is kept. The audit log
	// (audit.go): every change and attempted change through the admin
	// API, who, from where, what and how it ended; a change's entry is
	// written in the change's own transaction. Times are Unix ns.
	9: {
		`CREATE TABLE admin_tokens (
			id              TEXT PRIMARY KEY,
			name            TEXT NOT NULL,
			role            TEXT NOT NULL,
			controller      BOOLEAN NOT NULL,
			networks        TEXT NOT NULL,
			secret_hash     TEXT NOT NULL,
			expires         INTEGER NOT NULL,
			created         INTEGER NOT NULL,
			created_by      TEXT NOT NULL,
			created_by_name TEXT NOT NULL,
			revoked         INTEGER NOT NULL,
			revoked_by      TEXT NOT NULL,
			last_used       INTEGER NOT NULL
		)`,
		`CREATE TABLE audit_log (
			id         TEXT PRIMARY KEY,
			at         INTEGER NOT NULL,
			token_id   TEXT NOT NULL,
			token_name TEXT NOT NULL,
			remote     TEXT NOT NULL,
			action     TEXT NOT NULL,
			network_id TEXT NOT NULL,
			target     TEXT NOT NULL,
			detail     TEXT NOT NULL,
			outcome    TEXT NOT NULL,
			status     INTEGER NOT NULL,
			error      TEXT NOT NULL
		)`,
		`CREATE INDEX audit_log_at ON audit_log (at)`,
		`CREATE INDEX audit_log_network ON audit_log (network_id, at)`,
	},
	// The web console's sign-ins (web.go): a session is keyed by the
	// SHA-256 of its cookie's secret and belongs to the admin token that
	// signed in, whose role, scope, expiry and revocation are read again
	// on every request (for the built-in admin, token_hash is the
	// SHA-256 of the admin-token file it signed in with: replacing the
	// file ends them). The audit log says which way a change came in.
	{
		`CREATE TABLE sessions (
			id         TEXT PRIMARY KEY,
			token_id   TEXT NOT NULL,
			token_hash TEXT NOT NULL,
			created    INTEGER NOT NULL,
			expires    INTEGER NOT NULL,
			seen       INTEGER NOT NULL,
			remote     TEXT NOT NULL
		)`,
		`CREATE INDEX sessions_token ON sessions (token_id)`,
		`ALTER TABLE audit_log ADD COLUMN via TEXT NOT NULL DEFAULT ''`,
	},
	// Join tokens revoked before they expire (a leaked user-data): when,
	// 0 for never. A revoked token also expires then, so that it promises
	// its address no more.
	{
		`ALTER TABLE tokens ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0`,
	},
}

// migrate brings the schema up to date, one migration per transaction.
// Each transaction reads the schema version anew, in PostgreSQL under an
// advisory lock that only migrations take: of several controllers started
// at once on one database, one applies each migration and the others wait
// for it, then find it applied (READ COMMITTED: the read after the lock
// sees what the lock's last holder committed).
func (st *Store) migrate(ctx context.Context) error {
	want := len(migrations) - 1
	for {
		var have int
		err := st.Write(ctx, func(tx *Tx) error {
			var err error
			if have, err = tx.lockSchema(); err != nil || have >= want {
				return err
			}
			for _, stmt := range migrations[have+1] {
				if _, err := tx.tx.ExecContext(tx.ctx, tx.dialect.ddl(stmt)); err != nil {
					return fmt.Errorf("applying schema migration %d: %w", have+1, err)
				}
			}
			if _, err := tx.tx.ExecContext(tx.ctx, `INSERT INTO schema_migrations (version, applied) VALUES ($1, $2)`, have+1, time.Now().UnixNano()); err != nil {
				return fmt.Errorf("applying schema migration %d: %w", have+1, err)
			}
			return nil
		})
		switch {
		case err != nil:
			return err
		case have > want:
			return fmt.Errorf("schema version %d is newer than this controller knows (%d); run a newer gate", have, want)
		case have == want:
			return nil
		}
	}
}

// lockSchema takes the migrations' lock (PostgreSQL), creates
// schema_migrations if need be and returns the schema version.
func (tx *Tx) lockSchema() (int, error) {
	if tx.dialect == postgresDB {
		if _, err := tx.tx.ExecContext(tx.ctx, `SELECT pg_advisory_xact_lock($1)`, schemaLockKey); err != nil {
			return 0, fmt.Errorf("locking the schema: %w", err)
		}
	}
	if _, err := tx.tx.ExecContext(tx.ctx, tx.dialect.ddl(`CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		applied INTEGER NOT NULL
	)`)); err != nil {
		return 0, fmt.Errorf("creating schema_migrations: %w", err)
	}
	return tx.schemaVersion()
}

func (tx *Tx) schemaVersion() (int, error) {
	var v int
	if err := tx.tx.QueryRowContext(tx.ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading the schema version: %w", err)
	}
	return v, nil
}

// SchemaVersion is the number of schema migrations the database has had.
func (st *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := st.Read(ctx, func(tx *Tx) (err error) {
		v, err = tx.schemaVersion()
		return err
	})
	return v, err
}
