package controller

// The controller on PostgreSQL. The store's tests run on both databases
// (backends); TestPostgres runs the API tests that reach the store again
// with the controller on PostgreSQL, each on a fresh database of a server
// the tests start themselves (services/pgtest). Tests of the transport,
// the handshakes and pacing, which never reach the store, run once.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatenet/gate/services/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// backends are the store's databases: db gives a test a fresh one.
var backends = []struct {
	name string
	db   func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "c.db") }},
	{"postgres", func(t *testing.T) string { return pgtest.NewDB(t) }},
}

// TestPostgres runs API tests with the controller on PostgreSQL: the
// harness gives a controller started under it a PostgreSQL database
// (testDB).
func TestPostgres(t *testing.T) {
	for _, tc := range []struct {
		name string
		test func(*testing.T)
	}{
		{"SeedScenario", TestSeedScenario},
		{"StaticAddressRules", TestStaticAddressRules},
		{"PoolExhaustion", TestPoolExhaustion},
		{"NetworkRules", TestNetworkRules},
		{"AuthAndErrors", TestAuthAndErrors},
		{"ConcurrentJoins", TestConcurrentJoins},
		{"IdentityPinned", TestIdentityPinned},
		{"RequestedAddressKeptUntilAllowed", TestRequestedAddressKeptUntilAllowed},
		{"AttackEndpointInjection", TestAttackEndpointInjection},
		{"AttackDuplicateKey", TestAttackDuplicateKey},
		{"AttackRouteNextHop", TestAttackRouteNextHop},
		{"AttackPendingFlood", TestAttackPendingFlood},
		{"AttackFingerprint", TestAttackFingerprint},
		{"AttackDeniedMemberStaysDenied", TestAttackDeniedMemberStaysDenied},
		{"AttackKeySquatting", TestAttackKeySquatting},
		{"AttackPendingFromOneIPv6Net", TestAttackPendingFromOneIPv6Net},
		{"AttackReportFlood", TestAttackReportFlood},
		{"DeltasAgreeWithFullConfigs", TestDeltasAgreeWithFullConfigs},
		{"DeltaIsSmall", TestDeltaIsSmall},
		{"PeerListBlocks", TestPeerListBlocks},
		{"RouteWithBackups", TestRouteWithBackups},
		{"AttackRouteFailover", TestAttackRouteFailover},
		{"RouteMigration", TestRouteMigration},
		{"LongPoll", TestLongPoll},
		{"ShutdownEndsLongPolls", TestShutdownEndsLongPolls},
		{"Restart", TestRestart},
		{"PolicyAPI", TestPolicyAPI},
		{"PolicyMigration", TestPolicyMigration},
		{"AttackPolicyInput", TestAttackPolicyInput},
		{"PeersFollowRules", TestPeersFollowRules},
		{"QuietChangesWakeNoOne", TestQuietChangesWakeNoOne},
		{"Tokens", TestTokens},
		{"TokenRecordsInstance", TestTokenRecordsInstance},
		{"AccessRoles", TestAccessRoles},
		{"AccessScope", TestAccessScope},
		{"AdminTokenLifecycle", TestAdminTokenLifecycle},
		{"AuditCommitsWithChange", TestAuditCommitsWithChange},
		{"AttackAccessInput", TestAttackAccessInput},
		{"WebSessions", TestWebSessions},
		{"TokenRevoke", TestTokenRevoke},
		{"SetRoute", TestSetRoute},
	} {
		t.Run(tc.name, tc.test)
	}
}

var (
	pgMu  sync.Mutex
	pgDBs = map[string]string{} // state directory -> its controller's PostgreSQL database
)

// testDB is Config.DB for a controller of a test on state directory dir:
// "" (SQLite in dir), or under TestPostgres a PostgreSQL database, the
// same each time a controller starts on dir.
func testDB(t *testing.T, dir string) string {
	t.Helper()
	if t.Name() != "TestPostgres" && !strings.HasPrefix(t.Name(), "TestPostgres/") {
		return ""
	}
	pgMu.Lock()
	defer pgMu.Unlock()
	if pgDBs[dir] == "" {
		pgDBs[dir] = pgtest.NewDB(t)
		t.Cleanup(func() {
			pgMu.Lock()
			delete(pgDBs, dir)
			pgMu.Unlock()
		})
	}
	return pgDBs[dir]
}

// openTestStore opens the database of the controller on dir (stopped), for
// tests that change it behind the controller's back.
func openTestStore(t *testing.T, dir string) *Store {
	t.Helper()
	st, err := Open(context.Background(), testDB(t, dir), dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestSchemaDialects: the migrations build the same schema on both
// databases, column for column, and none of PostgreSQL's integers is 32
// bits (what INTEGER would have been there).
func TestSchemaDialects(t *testing.T) {
	ctx := context.Background()
	schemas := map[string]string{}
	for _, b := range backends {
		st, err := Open(ctx, b.db(t), "")
		if err != nil {
			t.Fatalf("%s: %v", b.name, err)
		}
		defer st.Close()
		// A primary key is NOT NULL in PostgreSQL; in SQLite only where
		// declared so, which the code never relies on.
		q := `SELECT m.name || '.' || c.name || ' ' || c.type || ' ' || (c."notnull" OR c.pk > 0)
			FROM sqlite_master m, pragma_table_info(m.name) c WHERE m.type = 'table'`
		if st.dialect == postgresDB {
			q = `SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || CASE is_nullable WHEN 'NO' THEN 1 ELSE 0 END
				FROM information_schema.columns WHERE table_schema = current_schema()`
		}
		cols, err := strs(ctx, st.db, q)
		if err != nil {
			t.Fatalf("%s: %v", b.name, err)
		}
		for i, c := range cols {
			// PostgreSQL's names for the types SQLite was given.
			c = strings.NewReplacer(" bigint ", " INTEGER ", " text ", " TEXT ", " boolean ", " BOOLEAN ").Replace(c)
			if strings.Contains(c, " integer ") {
				t.Errorf("%s: %s is a 32-bit integer", b.name, c)
			}
			cols[i] = c
		}
		slices.Sort(cols)
		schemas[b.name] = strings.Join(cols, "\n")
	}
	if schemas["sqlite"] != schemas["postgres"] {
		t.Errorf("the schemas differ:\nSQLite:\n%s\n\nPostgreSQL:\n%s", schemas["sqlite"], schemas["postgres"])
	}
	if n := strings.Count(schemas["sqlite"], "\n") + 1; n < 40 {
		t.Errorf("only %d columns:\n%s", n, schemas["sqlite"])
	}
}

// TestDDL: PostgreSQL is given the migrations with INTEGER spelled BIGINT
// and nothing else changed, and INTEGER only ever names a column type in
// them (a new migration that used the word otherwise would be changed
// wrongly).
func TestDDL(t *testing.T) {
	colType := regexp.MustCompile(`^\s*(ALTER TABLE \w+ ADD COLUMN )?\w+\s+INTEGER( NOT NULL( DEFAULT -?\d+)?| PRIMARY KEY)?,?$`)
	for v, stmts := range migrations {
		for _, stmt := range stmts {
			pg := postgresDB.ddl(stmt)
			if sqliteDB.ddl(stmt) != stmt || strings.Contains(pg, "INTEGER") || strings.ReplaceAll(pg, "BIGINT", "INTEGER") != stmt {
				t.Errorf("migration %d: %q is %q in PostgreSQL", v, stmt, pg)
			}
			for line := range strings.Lines(stmt) {
				if strings.Contains(line, "INTEGER") && !colType.MatchString(strings.TrimSuffix(line, "\n")) {
					t.Errorf("migration %d: INTEGER in %q is not a column type", v, line)
				}
			}
		}
	}
}

func strs(ctx context.Context, db *sql.DB, q string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// TestMigrateTogether: controllers started at once on a new PostgreSQL
// database all come up, and each migration is applied once.
func TestMigrateTogether(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDB(t)
	const n = 4
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = OpenPostgres(ctx, dsn) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("controller %d: %v", i, errs[i])
		}
		defer stores[i].Close()
	}
	vs, err := strs(ctx, stores[0].db, `SELECT version::text FROM schema_migrations ORDER BY schema_migrations.version`)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for v := 1; v < len(migrations); v++ {
		want = append(want, fmt.Sprint(v))
	}
	if !slices.Equal(vs, want) {
		t.Errorf("schema_migrations %v, want %v", vs, want)
	}
	if v, err := stores[n-1].SchemaVersion(ctx); err != nil || v != len(migrations)-1 {
		t.Errorf("SchemaVersion %d, %v; want %d", v, err, len(migrations)-1)
	}
}

// TestRevisionAcrossProcesses: two stores (as two controllers would) that
// move one network's revision at once each get revisions of their own, and
// none is lost.
func TestRevisionAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDB(t)
	var stores [2]*Store
	for i := range stores {
		st, err := OpenPostgres(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		stores[i] = st
	}
	if err := stores[0].Write(ctx, func(tx *Tx) error {
		return tx.insertNetwork(networkRec{ID: "n", Name: "n", CIDR: mustPrefix("10.0.0.0/24"), MTU: 1420, Revision: 1})
	}); err != nil {
		t.Fatal(err)
	}
	const each = 50
	revs := make([][]uint64, len(stores))
	var wg sync.WaitGroup
	for i, st := range stores {
		wg.Go(func() {
			for range each {
				var r uint64
				err := st.Write(ctx, func(tx *Tx) (err error) {
					r, err = tx.bump("n")
					return err
				})
				if err != nil {
					t.Errorf("store %d: %v", i, err)
					return
				}
				revs[i] = append(revs[i], r)
			}
		})
	}
	wg.Wait()
	all := slices.Concat(revs...)
	slices.Sort(all)
	if len(slices.Compact(slices.Clone(all))) != len(all) || all[0] != 2 || all[len(all)-1] != 1+2*each {
		t.Errorf("revisions %v: want 2 to %d, each once", all, 1+2*each)
	}
	for i, rs := range revs {
		if !slices.IsSorted(rs) {
			t.Errorf("store %d saw its revisions go back: %v", i, rs)
		}
	}
}

// TestTokenUseAcrossProcesses: a single-use token that two controllers
// read unused at once is used by one of them; the other gets a conflict.
func TestTokenUseAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDB(t)
	var a, b *Store
	for _, st := range []**Store{&a, &b} {
		var err error
		if *st, err = OpenPostgres(ctx, dsn); err != nil {
			t.Fatal(err)
		}
		defer (*st).Close()
	}
	now := time.Now()
	if err := a.Write(ctx, func(tx *Tx) error {
		if err := tx.insertNetwork(networkRec{ID: "n", Name: "n", CIDR: mustPrefix("10.0.0.0/24"), MTU: 1420, Revision: 1}); err != nil {
			return err
		}
		return tx.insertToken(tokenRec{ID: "t", NetworkID: "n", SecretHash: "h", Expires: now.Add(time.Hour), Created: now})
	}); err != nil {
		t.Fatal(err)
	}
	use := func(st *Store, node string, between func()) error {
		return st.Write(ctx, func(tx *Tx) error {
			tok, found, err := tx.tokenByHash("h")
			if err != nil || !found || tok.Uses != 0 {
				return fmt.Errorf("token: %+v, %t, %v", tok, found, err)
			}
			between()
			return recordUse(tx, tok, memberRef{node: node, key: node}, "")
		})
	}
	// a reads the token unused; b uses it and commits; then a counts its use.
	var errB error
	errA := use(a, "node-a", func() { errB = use(b, "node-b", func() {}) })
	if errB != nil {
		t.Fatalf("the first use: %v", errB)
	}
	wantErr(t, "the second use", errA, "was used by another join at the same time")
	if statusOf(errA) != 409 {
		t.Errorf("the second use: status %d, want 409", statusOf(errA))
	}
	a.Read(ctx, func(tx *Tx) error {
		tok, _, err := tx.tokenByHash("h")
		if err != nil || tok.Uses != 1 || tok.UsedBy != "node-b" {
			t.Errorf("the token after both: %d uses, by %q (%v); want 1, by node-b", tok.Uses, tok.UsedBy, err)
		}
		return nil
	})
}

// TestFailedStatementInWrite: a write that goes on after a statement
// failed, as SQLite allows, is undone alone in PostgreSQL (which aborts
// the transaction at the failed statement), and the writes grouped with
// it commit.
func TestFailedStatementInWrite(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			st, err := Open(ctx, b.db(t), "")
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			insert := func(id string) func(*Tx) error {
				return func(tx *Tx) error {
					return tx.insertNetwork(networkRec{ID: id, Name: id, CIDR: mustPrefix("10.0.0.0/24"), MTU: 1420, Revision: 1})
				}
			}
			hold, release := make(chan struct{}), make(chan struct{})
			go st.Write(ctx, func(*Tx) error { close(hold); <-release; return nil })
			<-hold
			errs := make([]error, 3)
			var wg sync.WaitGroup
			for i, fn := range []func(*Tx) error{
				insert("a"),
				func(tx *Tx) error {
					if _, err := tx.tx.ExecContext(tx.ctx, `SELECT nothing FROM nowhere`); err == nil {
						return errors.New("the bad statement ran")
					}
					insert("b")(tx) // fails too in PostgreSQL, ignored as well
					return nil
				},
				insert("c"),
			} {
				wg.Go(func() { errs[i] = st.Write(ctx, fn) })
			}
			time.Sleep(100 * time.Millisecond) // the three queue up as one group
			close(release)
			wg.Wait()
			var have []string
			st.Read(ctx, func(tx *Tx) error {
				ns, err := tx.networks()
				for _, n := range ns {
					have = append(have, n.ID)
				}
				return err
			})
			slices.Sort(have)
			want := []string{"a", "b", "c"}
			if b.name == "postgres" {
				want = []string{"a", "c"}
				wantErr(t, "the write that ignored a failure", errs[1], "a statement of this write failed")
			} else if errs[1] != nil {
				t.Errorf("write b: %v", errs[1])
			}
			if errs[0] != nil || errs[2] != nil {
				t.Errorf("writes a and c: %v, %v", errs[0], errs[2])
			}
			if !slices.Equal(have, want) {
				t.Errorf("networks %v, want %v", have, want)
			}
		})
	}
}

func TestRedacted(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/var/lib/gate/controller/controller.db", "/var/lib/gate/controller/controller.db"},
		{"postgres://gate:s3cret@db.example:5432/gate", "postgres://gate:xxxxx@db.example:5432/gate"},
		{"postgresql://gate@db.example/gate?sslmode=verify-full", "postgresql://gate@db.example/gate?sslmode=verify-full"},
		{"postgres://db.example/gate?password=s3cret&sslpassword=s3cret&user=gate", "postgres://db.example/gate?password=xxxxx&sslpassword=xxxxx&user=gate"},
		{"postgres://gate:s3cret@db.example:port/gate", "postgres://(not shown)"},
		{"mysql://gate:s3cret@db.example/gate", "mysql://gate:xxxxx@db.example/gate"},
	} {
		if got := Redacted(tc.in); got != tc.want {
			t.Errorf("Redacted(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestOpenErrors: a database that cannot be opened is named in the error,
// never with its password.
func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, tc := range []struct{ db, want string }{
		{"postgres://gate:s3cret@/gate?host=" + dir, "postgres://gate:xxxxx@/gate?host="},
		{"postgres://gate:s3cret@db.example:port/gate", "postgres://(not shown): the URL does not parse"},
		{"postgres://gate:s3cret@localhost/gate?sslmode=sometimes", "sslmode"},
		{"postgres://gate:s3cret@localhost/gate?connect_timeout=soon", "connect_timeout"},
		{"mysql://gate:s3cret@db.example/gate", "want a postgres:// or postgresql:// URL"},
		{filepath.Join(dir, "no", "such", "dir", "c.db"), "no such file"},
	} {
		st, err := Open(ctx, tc.db, dir)
		if err == nil {
			st.Close()
			t.Errorf("Open(%q) succeeded", tc.db)
			continue
		}
		wantErr(t, Redacted(tc.db), err, tc.want)
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%s): the error shows the password: %v", Redacted(tc.db), err)
		}
	}
}

// TestCustomPlans: the controller's connections to PostgreSQL plan each
// statement anew (customPlans), unless the URL sets plan_cache_mode.
func TestCustomPlans(t *testing.T) {
	ctx := context.Background()
	db := pgtest.NewDB(t)
	sep := "?"
	if strings.Contains(db, "?") {
		sep = "&"
	}
	for _, tc := range []struct{ db, want string }{
		{db, "force_custom_plan"},
		{db + sep + "plan_cache_mode=auto", "auto"},
	} {
		st, err := Open(ctx, tc.db, "")
		if err != nil {
			t.Fatal(err)
		}
		var mode string
		err = st.Read(ctx, func(tx *Tx) error {
			return tx.tx.QueryRowContext(tx.ctx, `SHOW plan_cache_mode`).Scan(&mode)
		})
		st.Close()
		if err != nil || mode != tc.want {
			t.Errorf("%s: plan_cache_mode %q, %v; want %q", Redacted(tc.db), mode, err, tc.want)
		}
	}
}
