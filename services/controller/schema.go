package controller

import (
	"context"
	"fmt"
	"time"
)

// migrations are applied in order, each in its own transaction; the number
// of those applied is kept in schema_migrations. Never edit one that has
// shipped: append a new one.
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
}

func (st *Store) migrate(ctx context.Context) error {
	if _, err := st.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		applied INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	var have int
	if err := st.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	if want := len(migrations) - 1; have > want {
		return fmt.Errorf("schema version %d is newer than this controller knows (%d); run a newer gate", have, want)
	}
	for v := have + 1; v < len(migrations); v++ {
		err := st.Write(ctx, func(tx *Tx) error {
			for _, stmt := range migrations[v] {
				if _, err := tx.tx.ExecContext(ctx, stmt); err != nil {
					return err
				}
			}
			_, err := tx.tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied) VALUES ($1, $2)`, v, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return fmt.Errorf("applying schema migration %d: %w", v, err)
		}
	}
	return nil
}
