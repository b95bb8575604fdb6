package controller

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/names"
	"github.com/gatenet/gate/services/policy"

	_ "modernc.org/sqlite" // the embedded database, pure Go
)

// Store is the controller's database: SQLite by default, or PostgreSQL
// (store_pg.go) for a controller whose data must outlive one machine. The
// SQL is portable ($n placeholders, TEXT/INTEGER/BOOLEAN columns, no
// engine-specific syntax outside the connection settings); where the two
// differ, the store's dialect says how. Times are stored as Unix
// nanoseconds and addresses as text; a NULL address means none.
//
// Writes go through one goroutine that commits them in groups: every write
// queued while a commit (an fsync, milliseconds) is under way runs in the
// next database transaction, each inside its own savepoint, so a failing
// write is undone alone and the others commit together. A join storm thus
// costs one fsync per group rather than one per member. Each write still
// sees the writes before it and none of the ones after, exactly as if they
// ran one at a time, which is what "read, validate, write" relies on.
type Store struct {
	db      *sql.DB
	dialect dialect
	writes  chan *writeReq
	quit    chan struct{}
	exited  chan struct{}
	once    sync.Once
	// failed is called (on the writer goroutine) when a group that had
	// succeeded in part could not be committed, so that caches built from
	// its writes are dropped.
	failed func()
	// pg is how to reach PostgreSQL for a connection of one's own (Listen);
	// nil on SQLite.
	pg *pgx.ConnConfig
}

// OpenSQLite opens (creating if need be) the SQLite database at path and
// brings its schema up to date.
//
// The database holds every member's identity and the hashes of join
// tokens: it and its WAL and shared-memory files are private to the
// controller's user (0600), whatever the umask or the directory's mode,
// and an existing database with looser modes is made private.
func OpenSQLite(ctx context.Context, path string) (*Store, error) {
	if err := privateDB(path); err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(ON)", "busy_timeout(10000)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	st := newStore(db, sqliteDB)
	if err := st.migrate(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	return st, nil
}

// newStore starts the writer of a store on db.
func newStore(db *sql.DB, d dialect) *Store {
	st := &Store{db: db, dialect: d, writes: make(chan *writeReq), quit: make(chan struct{}), exited: make(chan struct{}), failed: func() {}}
	go st.writer()
	return st
}

// privateDB creates the database file 0600 if it does not exist (SQLite
// gives its -wal and -shm files the database file's mode) and takes away
// any access others have to the three.
func privateDB(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, fi.Mode().Perm()&0o700); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close stops the writer and closes the database.
func (st *Store) Close() error {
	st.once.Do(func() { close(st.quit) })
	<-st.exited
	return st.db.Close()
}

// Tx is one write (or read) with the controller's queries. In a write, it
// also records what changed, for the caches and the long-polls.
type Tx struct {
	ctx     context.Context
	tx      *sql.Tx
	dialect dialect
	// bumped lists the networks whose revision this transaction moved (or
	// which it deleted): their long-polls are woken after the commit.
	bumped []string
	// revs holds the revision each bumped network moved to: one write
	// moves a network's revision once.
	revs map[string]uint64
	// touched lists, by network, the members this write inserted, updated
	// or deleted; netChanged the networks whose row or routes it changed.
	touched    map[string][]string
	netChanged map[string]bool
	deleted    map[string]bool
	// after runs once the transaction has committed.
	after []func()
	// held lists the networks this write holds (Server.hold).
	held []string
	// locked is shared by the writes of one group (Store.commit): the
	// networks an earlier write of the group held and that were left so,
	// no write of the group having failed since. Their rows are locked
	// until the commit, and their views are what the database holds.
	locked map[string]bool
	// notes are this write's announcements to the other replicas
	// (Server.announce), sent with those of its group at the commit.
	notes []string
}

// afterCommit runs f after the transaction has committed, on the writer
// goroutine, in the order the writes ran.
func (tx *Tx) afterCommit(f func()) { tx.after = append(tx.after, f) }

func (tx *Tx) touch(networkID, node string) {
	if tx.touched == nil {
		tx.touched = map[string][]string{}
	}
	if !slices.Contains(tx.touched[networkID], node) {
		tx.touched[networkID] = append(tx.touched[networkID], node)
	}
}

func (tx *Tx) netChange(id string) {
	if tx.netChanged == nil {
		tx.netChanged = map[string]bool{}
	}
	tx.netChanged[id] = true
}

// Read runs fn in a transaction, which gives it a consistent snapshot; it
// is always rolled back.
func (st *Store) Read(ctx context.Context, fn func(*Tx) error) error {
	sqlTx, err := st.db.BeginTx(ctx, st.dialect.readOpts())
	if err != nil {
		return err
	}
	defer sqlTx.Rollback()
	return fn(&Tx{ctx: ctx, tx: sqlTx, dialect: st.dialect})
}

// Records as stored.

type networkRec struct {
	ID        string
	Name      string
	CIDR      netip.Prefix
	MTU       int
	AutoAllow bool
	// RequireToken refuses joins of new members that bring no join token.
	RequireToken bool
	Revision     uint64
	Created      time.Time
	// Horizon is the oldest revision a delta can start from: the
	// revisions of tombstones pruned so far, or of the schema upgrade
	// that started tracking changes.
	Horizon uint64
	// Rules is the network's policy: who may reach what, first match
	// decides.
	Rules policy.Policy
	// Gen counts the writes that changed the network's view; RulesRev,
	// PeersRev and ConfRev are the view's markers (netView), kept here
	// so that any replica loads the view its writer had.
	Gen                         uint64
	RulesRev, PeersRev, ConfRev uint64
}

type memberRec struct {
	NetworkID  string
	NodeID     string
	Identity   string // pin of the node's identity key: the node ID is a short name, this is the proof
	Hostname   string
	PublicKey  string
	Endpoints  []netip.AddrPort
	Observed   netip.AddrPort // where the controller saw it come from, with its listen port
	ListenPort int
	State      string
	Address    netip.Addr // zero: none
	Requested  netip.Addr // what it asked for at join, honoured when it is allowed
	BehindNAT  bool
	LastSeen   time.Time
	Version    string
	Created    time.Time
	// Rev is the network revision at which this member's entry in other
	// members' configurations last changed (deltas send what changed
	// since a revision).
	Rev uint64
	// Tags name the member in the network's rules (names.Tag, sorted).
	Tags []string
}

type tokenRec struct {
	ID         string
	NetworkID  string
	SecretHash string
	Reusable   bool
	Allow      bool
	Address    netip.Addr
	Expires    time.Time
	Uses       int
	Note       string
	UsedBy     string // the node that used it last
	Created    time.Time
	// UsedInstance is the cloud instance ID the node that used it last
	// reported, if any.
	UsedInstance string
	// UsedIdentity is the identity (pin) of the node that used it last;
	// "" for uses recorded before it was kept.
	UsedIdentity string
	// Tags are given to the members that join with it.
	Tags []string
	// Revoked is when an admin revoked it; zero if not.
	Revoked time.Time
}

func nanos(t time.Time) int64     { return t.UnixNano() }
func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// nullAddr stores an optional address.
func nullAddr(a netip.Addr) sql.NullString {
	if !a.IsValid() {
		return sql.NullString{}
	}
	return sql.NullString{String: a.String(), Valid: true}
}

func parseNullAddr(s sql.NullString) (netip.Addr, error) {
	if !s.Valid || s.String == "" {
		return netip.Addr{}, nil
	}
	return netip.ParseAddr(s.String)
}

func textAddr(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// Networks.

const networkCols = `id, name, cidr, mtu, auto_allow, revision, created, horizon, require_token, rules, gen, rules_rev, peers_rev, conf_rev`

func scanNetwork(sc interface{ Scan(...any) error }) (networkRec, error) {
	var n networkRec
	var cidr, rules string
	var rev, created, horizon, gen, rulesRev, peersRev, confRev int64
	if err := sc.Scan(&n.ID, &n.Name, &cidr, &n.MTU, &n.AutoAllow, &rev, &created, &horizon, &n.RequireToken, &rules, &gen, &rulesRev, &peersRev, &confRev); err != nil {
		return n, err
	}
	n.Gen, n.RulesRev, n.PeersRev, n.ConfRev = uint64(gen), uint64(rulesRev), uint64(peersRev), uint64(confRev)
	var err error
	if n.CIDR, err = netip.ParsePrefix(cidr); err != nil {
		return n, fmt.Errorf("network %s: stored cidr: %w", n.ID, err)
	}
	if err := json.Unmarshal([]byte(rules), &n.Rules); err != nil {
		return n, fmt.Errorf("network %s: stored rules: %w", n.ID, err)
	}
	n.Revision, n.Created, n.Horizon = uint64(rev), fromNanos(created), uint64(horizon)
	return n, nil
}

// network returns the network id, or a 404 error.
func (tx *Tx) network(id string) (networkRec, error) {
	n, err := scanNetwork(tx.tx.QueryRowContext(tx.ctx, `SELECT `+networkCols+` FROM networks WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return n, errNetworkNotFound(id)
	}
	return n, err
}

func errNetworkNotFound(id string) error { return errorf(404, "network %s not found", id) }

func (tx *Tx) networks() ([]networkRec, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT `+networkCols+` FROM networks`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []networkRec
	for rows.Next() {
		n, err := scanNetwork(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

func (tx *Tx) insertNetwork(n networkRec) error {
	rules, err := rulesText(n.Rules)
	if err != nil {
		return err
	}
	// A new network's markers are its first revision: nothing before it.
	_, err = tx.tx.ExecContext(tx.ctx, `INSERT INTO networks (`+networkCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $6, $6, $6)`,
		n.ID, n.Name, n.CIDR.String(), n.MTU, n.AutoAllow, int64(n.Revision), nanos(n.Created), int64(n.Horizon), n.RequireToken, rules)
	tx.netChange(n.ID)
	return err
}

func (tx *Tx) updateNetwork(n networkRec) error {
	rules, err := rulesText(n.Rules)
	if err != nil {
		return err
	}
	_, err = tx.tx.ExecContext(tx.ctx, `UPDATE networks SET name = $2, mtu = $3, auto_allow = $4, require_token = $5, rules = $6 WHERE id = $1`,
		n.ID, n.Name, n.MTU, n.AutoAllow, n.RequireToken, rules)
	tx.netChange(n.ID)
	return err
}

// rulesText is a policy as stored: a JSON array of rule strings.
func rulesText(p policy.Policy) (string, error) {
	if p == nil {
		p = policy.Policy{}
	}
	b, err := json.Marshal(p)
	return string(b), err
}

// tagsText is tags as stored: comma-separated, sorted.
func tagsText(tags []string) string { return strings.Join(tags, ",") }

// parseTags reads stored tags; each must be a tag as names.Tag gives it.
func parseTags(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	tags := strings.Split(s, ",")
	for _, t := range tags {
		if nt, ok := names.Tag(t); !ok || nt != t {
			return nil, fmt.Errorf("tag %q is not one", t)
		}
	}
	return tags, nil
}

// bump moves a network's revision (once per write): every member's
// configuration may have changed. It returns the new revision. The
// revision is moved in the database, never read and written back, so that
// two processes moving one network's revision at once (on PostgreSQL,
// where the row lock the UPDATE takes orders them until the commit) each
// get their own. PostgreSQL reads it back in the same statement, a round
// trip saved; SQLite in a second one, as before (RETURNING measured slower
// there).
func (tx *Tx) bump(id string) (uint64, error) {
	if r, ok := tx.revs[id]; ok {
		return r, nil
	}
	r, err := tx.moveNetwork(`UPDATE networks SET revision = revision + 1 WHERE id = $1`, "revision", id)
	if err != nil {
		return 0, err
	}
	if tx.revs == nil {
		tx.revs = map[string]uint64{}
	}
	tx.revs[id] = r
	tx.changed(id)
	return r, nil
}

// moveNetwork runs set, an UPDATE of one network's row whose $1 is its
// ID (id, then args), and returns the row's column col after it:
// PostgreSQL in the same statement (RETURNING), SQLite in a second one,
// as RETURNING measured slower there.
func (tx *Tx) moveNetwork(set, col, id string, args ...any) (uint64, error) {
	args = append([]any{id}, args...)
	var v int64
	if tx.dialect == postgresDB {
		err := tx.tx.QueryRowContext(tx.ctx, set+` RETURNING `+col, args...).Scan(&v)
		return uint64(v), err
	}
	if _, err := tx.tx.ExecContext(tx.ctx, set, args...); err != nil {
		return 0, err
	}
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT `+col+` FROM networks WHERE id = $1`, id).Scan(&v)
	return uint64(v), err
}

// markNetwork records a write that changed network id's view: its gen
// moves, and the view's markers are stored with it. It returns the new
// gen.
func (tx *Tx) markNetwork(id string, rulesRev, peersRev, confRev uint64) (uint64, error) {
	return tx.moveNetwork(`UPDATE networks SET gen = gen + 1, rules_rev = $2, peers_rev = $3, conf_rev = $4 WHERE id = $1`, "gen",
		id, int64(rulesRev), int64(peersRev), int64(confRev))
}

// lockNetwork reads network id's gen (found false: there is no such
// network) and, on PostgreSQL, locks its row until the transaction ends:
// writes to one network through several replicas run one after the
// other. Once per network and transaction.
func (tx *Tx) lockNetwork(id string) (gen uint64, found bool, err error) {
	q := `SELECT gen FROM networks WHERE id = $1`
	if tx.dialect == postgresDB {
		q += ` FOR UPDATE`
	}
	var g int64
	switch err := tx.tx.QueryRowContext(tx.ctx, q, id).Scan(&g); {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, err
	}
	return uint64(g), true, nil
}

// networksLockKey is the advisory lock that making a network takes in
// PostgreSQL ("gatenet" in ASCII): nothing else takes it.
const networksLockKey int64 = 0x67_6174_656e_6574

// lockNetworkList serializes the making of networks across replicas until
// the transaction ends (PostgreSQL; SQLite has one writer).
func (tx *Tx) lockNetworkList() error {
	if tx.dialect != postgresDB {
		return nil
	}
	_, err := tx.tx.ExecContext(tx.ctx, `SELECT pg_advisory_xact_lock($1)`, networksLockKey)
	return err
}

// changed marks network id for waking its long-polls after the commit.
func (tx *Tx) changed(id string) {
	if !slices.Contains(tx.bumped, id) {
		tx.bumped = append(tx.bumped, id)
	}
}

func (tx *Tx) deleteNetwork(id string) error {
	if tx.deleted == nil {
		tx.deleted = map[string]bool{}
	}
	tx.deleted[id] = true
	for _, q := range []string{
		`DELETE FROM tombstones WHERE network_id = $1`,
		`DELETE FROM tokens WHERE network_id = $1`,
		`DELETE FROM members WHERE network_id = $1`,
		`DELETE FROM routes WHERE network_id = $1`,
		`DELETE FROM networks WHERE id = $1`,
	} {
		if _, err := tx.tx.ExecContext(tx.ctx, q, id); err != nil {
			return err
		}
	}
	return nil
}

// Routes.

func (tx *Tx) routes(networkID string) ([]control.Route, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT dest, via, backups, failback_ms, probes FROM routes WHERE network_id = $1`, networkID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []control.Route
	for rows.Next() {
		var dest, via, backups, probes string
		var failback int64
		if err := rows.Scan(&dest, &via, &backups, &failback, &probes); err != nil {
			return nil, err
		}
		r, err := storedRoute(dest, via, backups, failback, probes)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// storedRoute reads a route from its columns.
func storedRoute(dest, via, backups string, failbackMS int64, probes string) (control.Route, error) {
	var r control.Route
	var err error
	if r.Dest, err = netip.ParsePrefix(dest); err != nil {
		return r, fmt.Errorf("stored route dest: %w", err)
	}
	if r.Via, err = netip.ParseAddr(via); err != nil {
		return r, fmt.Errorf("stored route via: %w", err)
	}
	for _, b := range splitList(backups) {
		a, err := netip.ParseAddr(b)
		if err != nil {
			return r, fmt.Errorf("stored route %s backup: %w", r.Dest, err)
		}
		r.Backups = append(r.Backups, a)
	}
	r.Failback = control.Failback(time.Duration(failbackMS) * time.Millisecond)
	if failbackMS < 0 {
		r.Failback = control.FailbackNever
	}
	for _, p := range splitList(probes) {
		pr, err := control.ParseProbe(p)
		if err != nil {
			return r, fmt.Errorf("stored route %s: %w", r.Dest, err)
		}
		r.Probes = append(r.Probes, pr)
	}
	return r, nil
}

// splitList splits a comma-separated column; "" is none.
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func (tx *Tx) insertRoute(networkID string, r control.Route) error {
	backups := make([]string, 0, len(r.Backups))
	for _, a := range r.Backups {
		backups = append(backups, a.String())
	}
	probes := make([]string, 0, len(r.Probes))
	for _, p := range r.Probes {
		probes = append(probes, p.String())
	}
	failback := time.Duration(r.Failback).Milliseconds()
	if r.Failback == control.FailbackNever {
		failback = -1
	}
	_, err := tx.tx.ExecContext(tx.ctx, `INSERT INTO routes (network_id, dest, via, backups, failback_ms, probes) VALUES ($1, $2, $3, $4, $5, $6)`,
		networkID, r.Dest.String(), r.Via.String(), strings.Join(backups, ","), failback, strings.Join(probes, ","))
	tx.netChange(networkID)
	return err
}

// deleteRoute removes the route to dest and reports whether there was one.
func (tx *Tx) deleteRoute(networkID string, dest netip.Prefix) (bool, error) {
	res, err := tx.tx.ExecContext(tx.ctx, `DELETE FROM routes WHERE network_id = $1 AND dest = $2`, networkID, dest.String())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	tx.netChange(networkID)
	return n > 0, err
}

// Members.

const memberCols = `network_id, node_id, identity, hostname, public_key, endpoints, observed, listen_port, state, address, requested, behind_nat, last_seen, version, created, rev, tags`

func scanMember(sc interface{ Scan(...any) error }) (memberRec, error) {
	var m memberRec
	var eps, observed, requested, tags string
	var addr sql.NullString
	var lastSeen, created, rev int64
	if err := sc.Scan(&m.NetworkID, &m.NodeID, &m.Identity, &m.Hostname, &m.PublicKey, &eps, &observed, &m.ListenPort,
		&m.State, &addr, &requested, &m.BehindNAT, &lastSeen, &m.Version, &created, &rev, &tags); err != nil {
		return m, err
	}
	bad := func(what string, err error) error { return fmt.Errorf("member %s: stored %s: %w", m.NodeID, what, err) }
	var err error
	if m.Tags, err = parseTags(tags); err != nil {
		return m, bad("tags", err)
	}
	if err := json.Unmarshal([]byte(eps), &m.Endpoints); err != nil {
		return m, bad("endpoints", err)
	}
	m.Endpoints = validEndpoints(m.Endpoints)
	if observed != "" {
		if m.Observed, err = netip.ParseAddrPort(observed); err != nil {
			return m, bad("observed endpoint", err)
		}
		if endpointFault(m.Observed) != "" {
			m.Observed = netip.AddrPort{}
		}
	}
	if m.Address, err = parseNullAddr(addr); err != nil {
		return m, bad("address", err)
	}
	if requested != "" {
		if m.Requested, err = netip.ParseAddr(requested); err != nil {
			return m, bad("requested address", err)
		}
	}
	m.LastSeen, m.Created, m.Rev = fromNanos(lastSeen), fromNanos(created), uint64(rev)
	return m, nil
}

func errMemberNotFound(node, networkID string) error {
	return errorf(404, "member %s is not in network %s", node, networkID)
}

// member returns a member, or a 404 error.
func (tx *Tx) member(networkID, node string) (memberRec, error) {
	m, err := scanMember(tx.tx.QueryRowContext(tx.ctx,
		`SELECT `+memberCols+` FROM members WHERE network_id = $1 AND node_id = $2`, networkID, node))
	if errors.Is(err, sql.ErrNoRows) {
		return m, errMemberNotFound(node, networkID)
	}
	return m, err
}

// memberIfAny returns a member; found is false if there is none.
func (tx *Tx) memberIfAny(networkID, node string) (m memberRec, found bool, err error) {
	m, err = scanMember(tx.tx.QueryRowContext(tx.ctx,
		`SELECT `+memberCols+` FROM members WHERE network_id = $1 AND node_id = $2`, networkID, node))
	if errors.Is(err, sql.ErrNoRows) {
		return m, false, nil
	}
	return m, err == nil, err
}

func (tx *Tx) members(networkID string) ([]memberRec, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT `+memberCols+` FROM members WHERE network_id = $1`, networkID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []memberRec
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func memberArgs(m memberRec) ([]any, error) {
	eps := m.Endpoints
	if eps == nil {
		eps = []netip.AddrPort{}
	}
	b, err := json.Marshal(eps)
	if err != nil {
		return nil, err
	}
	observed := ""
	if m.Observed.IsValid() {
		observed = m.Observed.String()
	}
	return []any{m.NetworkID, m.NodeID, m.Identity, m.Hostname, m.PublicKey, string(b), observed, m.ListenPort,
		m.State, nullAddr(m.Address), textAddr(m.Requested), m.BehindNAT, nanos(m.LastSeen), m.Version, nanos(m.Created), int64(m.Rev), tagsText(m.Tags)}, nil
}

func (tx *Tx) insertMember(m memberRec) error {
	args, err := memberArgs(m)
	if err != nil {
		return err
	}
	_, err = tx.tx.ExecContext(tx.ctx, `INSERT INTO members (`+memberCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`, args...)
	tx.touch(m.NetworkID, m.NodeID)
	return err
}

// updateMember writes every column of an existing member.
func (tx *Tx) updateMember(m memberRec) error {
	args, err := memberArgs(m)
	if err != nil {
		return err
	}
	_, err = tx.tx.ExecContext(tx.ctx, `UPDATE members SET identity = $3, hostname = $4, public_key = $5,
		endpoints = $6, observed = $7, listen_port = $8, state = $9, address = $10, requested = $11,
		behind_nat = $12, last_seen = $13, version = $14, created = $15, rev = $16, tags = $17
		WHERE network_id = $1 AND node_id = $2`, args...)
	tx.touch(m.NetworkID, m.NodeID)
	return err
}

func (tx *Tx) deleteMember(networkID, node string) error {
	_, err := tx.tx.ExecContext(tx.ctx, `DELETE FROM members WHERE network_id = $1 AND node_id = $2`, networkID, node)
	tx.touch(networkID, node)
	return err
}

// setMemberRev records the revision at which a member's peer entry changed.
func (tx *Tx) setMemberRev(networkID, node string, rev uint64) error {
	_, err := tx.tx.ExecContext(tx.ctx, `UPDATE members SET rev = $3 WHERE network_id = $1 AND node_id = $2`, networkID, node, int64(rev))
	return err
}

// setLastSeen writes when a member was last heard from, which is kept in
// memory between writes.
func (tx *Tx) setLastSeen(networkID, node string, t time.Time) error {
	_, err := tx.tx.ExecContext(tx.ctx, `UPDATE members SET last_seen = $3 WHERE network_id = $1 AND node_id = $2`, networkID, node, nanos(t))
	return err
}

// Tombstones: members that were deleted, kept for a while with the
// revision of their removal so that deltas can tell the others.

func (tx *Tx) putTombstone(networkID, node string, rev uint64, at time.Time) error {
	if err := tx.dropTombstone(networkID, node); err != nil {
		return err
	}
	_, err := tx.tx.ExecContext(tx.ctx, `INSERT INTO tombstones (network_id, node_id, rev, deleted) VALUES ($1, $2, $3, $4)`,
		networkID, node, int64(rev), nanos(at))
	return err
}

func (tx *Tx) dropTombstone(networkID, node string) error {
	_, err := tx.tx.ExecContext(tx.ctx, `DELETE FROM tombstones WHERE network_id = $1 AND node_id = $2`, networkID, node)
	return err
}

// tombstones returns a network's tombstones: node ID -> revision.
func (tx *Tx) tombstones(networkID string) (map[string]uint64, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT node_id, rev FROM tombstones WHERE network_id = $1`, networkID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var node string
		var rev int64
		if err := rows.Scan(&node, &rev); err != nil {
			return nil, err
		}
		out[node] = uint64(rev)
	}
	return out, rows.Err()
}

// pruneTombstones forgets the tombstones of a network deleted before
// cutoff and moves its horizon past them; it returns the new horizon.
func (tx *Tx) pruneTombstones(networkID string, cutoff time.Time) (uint64, error) {
	var top sql.NullInt64
	if err := tx.tx.QueryRowContext(tx.ctx, `SELECT MAX(rev) FROM tombstones WHERE network_id = $1 AND deleted < $2`,
		networkID, nanos(cutoff)).Scan(&top); err != nil {
		return 0, err
	}
	if top.Valid {
		if _, err := tx.tx.ExecContext(tx.ctx, `DELETE FROM tombstones WHERE network_id = $1 AND rev <= $2`, networkID, top.Int64); err != nil {
			return 0, err
		}
		// The horizon only moves forward, whoever else moves it.
		if _, err := tx.tx.ExecContext(tx.ctx, `UPDATE networks SET horizon = $2 WHERE id = $1 AND horizon < $2`, networkID, top.Int64); err != nil {
			return 0, err
		}
	}
	var horizon int64
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT horizon FROM networks WHERE id = $1`, networkID).Scan(&horizon)
	return uint64(horizon), err
}

// Tokens.

const tokenCols = `id, network_id, secret_hash, reusable, allow, address, expires, uses, note, used_by, created, used_instance, used_identity, tags, revoked`

func scanToken(sc interface{ Scan(...any) error }) (tokenRec, error) {
	var t tokenRec
	var addr sql.NullString
	var tags string
	var expires, created, revoked int64
	if err := sc.Scan(&t.ID, &t.NetworkID, &t.SecretHash, &t.Reusable, &t.Allow, &addr, &expires,
		&t.Uses, &t.Note, &t.UsedBy, &created, &t.UsedInstance, &t.UsedIdentity, &tags, &revoked); err != nil {
		return t, err
	}
	var err error
	if t.Address, err = parseNullAddr(addr); err != nil {
		return t, fmt.Errorf("token %s: stored address: %w", t.ID, err)
	}
	if t.Tags, err = parseTags(tags); err != nil {
		return t, fmt.Errorf("token %s: stored tags: %w", t.ID, err)
	}
	t.Expires, t.Created, t.Revoked = fromNanos(expires), fromNanos(created), fromOptNanos(revoked)
	return t, nil
}

func (tx *Tx) insertToken(t tokenRec) error {
	_, err := tx.tx.ExecContext(tx.ctx, `INSERT INTO tokens (`+tokenCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		t.ID, t.NetworkID, t.SecretHash, t.Reusable, t.Allow, nullAddr(t.Address), nanos(t.Expires),
		t.Uses, t.Note, t.UsedBy, nanos(t.Created), t.UsedInstance, t.UsedIdentity, tagsText(t.Tags), optNanos(t.Revoked))
	return err
}

// tokenByHash returns the token with the given secret hash; found is false
// if there is none.
func (tx *Tx) tokenByHash(hash string) (t tokenRec, found bool, err error) {
	t, err = scanToken(tx.tx.QueryRowContext(tx.ctx, `SELECT `+tokenCols+` FROM tokens WHERE secret_hash = $1`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return t, false, nil
	}
	return t, err == nil, err
}

// promisedAddresses returns the addresses that network networkID's live
// join tokens promise (unexpired, and unused unless reusable), each with
// the ID of a token that promises it.
func (tx *Tx) promisedAddresses(networkID string, now time.Time) (map[netip.Addr]string, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT id, address FROM tokens
		WHERE network_id = $1 AND address IS NOT NULL AND expires > $2 AND (reusable OR uses = 0)`, networkID, nanos(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[netip.Addr]string{}
	for rows.Next() {
		var id string
		var addr sql.NullString
		if err := rows.Scan(&id, &addr); err != nil {
			return nil, err
		}
		a, err := parseNullAddr(addr)
		if err != nil {
			return nil, fmt.Errorf("token %s: stored address: %w", id, err)
		}
		if a.IsValid() {
			out[a] = id
		}
	}
	return out, rows.Err()
}

func (tx *Tx) tokens(networkID string) ([]tokenRec, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT `+tokenCols+` FROM tokens WHERE network_id = $1`, networkID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []tokenRec
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// recordTokenUse counts one more use of token id, which had been used
// had times when this write read it. Another process (a replica on the
// same PostgreSQL) that counted a use since then makes this a conflict
// rather than a use lost, or a single-use token used twice.
func (tx *Tx) recordTokenUse(id string, had int, usedBy, identity, instance string) error {
	res, err := tx.tx.ExecContext(tx.ctx, `UPDATE tokens SET uses = uses + 1, used_by = $3, used_instance = $4, used_identity = $5 WHERE id = $1 AND uses = $2`,
		id, had, usedBy, instance, identity)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return cmp.Or(err, conflict("join token %s was used by another join at the same time; try again", id))
	}
	return nil
}
