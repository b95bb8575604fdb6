package controller

// PostgreSQL, the store's second database, for a controller whose data
// must outlive one machine. The queries are SQLite's: the SQL was kept
// portable, and what differs between the two is handled here, by dialect:
//
//   - Column types. The migrations say INTEGER for Unix nanoseconds and
//     revisions: 64 bits in SQLite, 32 in PostgreSQL. Shipped migrations
//     are never edited, so on PostgreSQL each is applied with the word
//     INTEGER, which only ever names a column type in them, spelled BIGINT
//     (ddl; the tests check that the two schemas then match column for
//     column and that PostgreSQL has no 32-bit column).
//   - Migrations. Several controllers may start at once on one PostgreSQL:
//     each migration's transaction first takes an advisory lock, then
//     reads the schema version (schema.go).
//   - Reads. A SQLite transaction reads one snapshot; PostgreSQL's default
//     (READ COMMITTED) takes one per statement, so Read asks for
//     REPEATABLE READ, read-only. Writes stay READ COMMITTED: the store's
//     one writer per process runs them in order, and what another process
//     may write meanwhile is guarded statement by statement (a revision
//     moves with UPDATE ... RETURNING, never read and written back).
//   - Errors. A failed statement aborts a PostgreSQL transaction until it
//     is rolled back to a savepoint: every write runs in one, and the
//     writer rolls back to it on every error (store_write.go).
//
// The driver is pgx, pure Go (the binary stays static), through its
// database/sql adapter so that Store keeps one *sql.DB for both.

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// dialect is the SQL a store's database speaks where SQLite and PostgreSQL
// differ.
type dialect int

const (
	sqliteDB dialect = iota
	postgresDB
)

// maxPGConns caps a controller's connections to PostgreSQL, which shares
// its max_connections (100 by default) among every replica and client:
// the writer holds one, admin reads and view loads are short.
const maxPGConns = 16

// schemaLockKey is the advisory lock migrations take in PostgreSQL
// ("gatectl" in ASCII): nothing else takes it.
const schemaLockKey int64 = 0x67617465_63746c

// Open opens the controller's database and brings its schema up to date:
// PostgreSQL when db is a postgres:// or postgresql:// URL, the SQLite file
// db otherwise, or controller.db in stateDir when db is "".
func Open(ctx context.Context, db, stateDir string) (*Store, error) {
	switch {
	case db == "":
		return OpenSQLite(ctx, filepath.Join(stateDir, dbFile))
	case isPostgres(db):
		return OpenPostgres(ctx, db)
	case strings.Contains(db, "://"):
		return nil, fmt.Errorf("database %s: want a postgres:// or postgresql:// URL, or the path of a SQLite file", Redacted(db))
	}
	return OpenSQLite(ctx, db)
}

func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// OpenPostgres connects to the PostgreSQL database at dsn (a postgres://
// URL; libpq's settings and environment apply, PGPASSWORD and ~/.pgpass
// included) and brings its schema up to date. Errors name the database
// without its password.
func OpenPostgres(ctx context.Context, dsn string) (*Store, error) {
	name := Redacted(dsn)
	if _, err := url.Parse(dsn); err != nil {
		// url's error quotes the URL whole, password and all.
		return nil, fmt.Errorf("database %s: the URL does not parse (not shown: it may hold a password)", name)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx masks the passwords in what it quotes.
		return nil, fmt.Errorf("database %s: %w", name, err)
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "gate controller" // in pg_stat_activity
	}
	db := stdlib.OpenDB(*cfg, stdlib.OptionAfterConnect(customPlans(cfg)))
	db.SetMaxOpenConns(maxPGConns)
	db.SetMaxIdleConns(maxPGConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: %w", name, err)
	}
	st := newStore(db, postgresDB)
	st.pg = cfg
	if err := st.migrate(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("database %s: %w", name, err)
	}
	return st, nil
}

// customPlans makes a connection plan each statement for its arguments
// and the tables as they are then (plan_cache_mode, PostgreSQL 12 and
// later), unless the URL sets plan_cache_mode itself. pgx prepares the
// statements it runs, and PostgreSQL's plan cache would otherwise keep, from
// a statement's sixth run on, a generic plan made while the tables were
// small, until autovacuum analyzes them: in a join storm into a new
// network, each lookup of a member by its key scanned the whole members
// table (36 us at the start of a 1,000-member storm, 170 us at its end,
// 10 us throughout when planned each time), on the writer, one at a time.
func customPlans(cfg *pgx.ConnConfig) func(context.Context, *pgx.Conn) error {
	return func(ctx context.Context, c *pgx.Conn) error {
		if cfg.RuntimeParams["plan_cache_mode"] != "" || strings.Contains(cfg.RuntimeParams["options"], "plan_cache_mode") {
			return nil
		}
		v := c.PgConn().ParameterStatus("server_version") // "15.10 (Debian 15.10-0+deb12u1)"
		if end := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' }); end >= 0 {
			v = v[:end]
		}
		if major, err := strconv.Atoi(v); err != nil || major < 12 {
			return nil
		}
		_, err := c.Exec(ctx, `SET plan_cache_mode = force_custom_plan`)
		return err
	}
}

// Redacted is db as it may be logged or shown: a URL without its password
// (in the user part, and password or sslpassword settings), only the
// scheme of one that does not parse, a file path as it is.
func Redacted(db string) string {
	scheme, _, isURL := strings.Cut(db, "://")
	if !isURL {
		return db
	}
	u, err := url.Parse(db)
	if err != nil {
		return scheme + "://(not shown)"
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			if strings.Contains(strings.ToLower(k), "password") {
				q[k] = []string{"xxxxx"}
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// integerType is the column type INTEGER, as a word.
var integerType = regexp.MustCompile(`\bINTEGER\b`)

// ddl is a schema statement in the dialect: in PostgreSQL a 64-bit
// INTEGER is a BIGINT.
func (d dialect) ddl(stmt string) string {
	if d != postgresDB {
		return stmt
	}
	return integerType.ReplaceAllLiteralString(stmt, "BIGINT")
}

// readOpts is how Read begins its transactions: one snapshot for the whole
// of them (SQLite's transactions are that already).
func (d dialect) readOpts() *sql.TxOptions {
	if d != postgresDB {
		return nil
	}
	return &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
}

// notifyChannel is the PostgreSQL channel replicas announce their writes
// on (replicas.go).
const notifyChannel = "gate_changes"

// sendNotes sends announcements on notifyChannel, each once, in one
// statement: PostgreSQL delivers them when the transaction commits, and
// not if it does not.
func sendNotes(tx *sql.Tx, notes []string) error {
	seen := make(map[string]bool, len(notes))
	var once []string
	for _, n := range notes {
		if !seen[n] {
			seen[n] = true
			once = append(once, n)
		}
	}
	_, err := tx.Exec(`SELECT pg_notify($1, note) FROM unnest($2::text[]) AS note`, notifyChannel, once)
	return err
}

// Listen calls got with the payload of every notification on
// notifyChannel, from a connection of its own, until ctx is done. After
// the connection was lost (and when it is first made) it calls resync:
// notifications sent meanwhile are gone. It waits a little longer after
// each failure, up to 5 s, and logs the first failure of a series. Only
// PostgreSQL has notifications: on SQLite it returns at once.
func (st *Store) Listen(ctx context.Context, got func(payload string), resync func(), logf func(string, ...any)) {
	if st.pg == nil {
		return
	}
	wait := 100 * time.Millisecond
	failing := false
	for ctx.Err() == nil {
		err := st.listenOnce(ctx, got, func() {
			wait, failing = 100*time.Millisecond, false
			resync()
		})
		if ctx.Err() != nil {
			return
		}
		if !failing {
			logf("database notifications: %v; listening again", err)
			failing = true
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

func (st *Store) listenOnce(ctx context.Context, got func(string), listening func()) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, err := pgx.ConnectConfig(cctx, st.pg.Copy())
	cancel()
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	if _, err := c.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	listening()
	for {
		n, err := c.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		got(n.Payload)
	}
}
