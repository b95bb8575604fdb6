package controller

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/gatenet/gate/services/control"

	_ "modernc.org/sqlite" // the embedded database, pure Go
)

// Store is the controller's database. The SQL is kept portable ($n
// placeholders, TEXT/INTEGER/BOOLEAN columns, no engine-specific syntax
// outside the connection pragmas) so that a PostgreSQL DSN can be added for
// a highly available controller. Times are stored as Unix nanoseconds and
// addresses as text; a NULL address means none.
type Store struct {
	db *sql.DB
	// wmu serialises write transactions: SQLite has one writer anyway, and
	// serialising here makes "read, validate, write" in one transaction
	// free of lost updates without relying on the engine's isolation.
	wmu sync.Mutex
}

// OpenSQLite opens (creating if need be) the SQLite database at path and
// brings its schema up to date.
func OpenSQLite(ctx context.Context, path string) (*Store, error) {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(ON)", "busy_timeout(10000)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	st := &Store{db: db}
	if err := st.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	return st, nil
}

// Close closes the database.
func (st *Store) Close() error { return st.db.Close() }

// Tx is one database transaction with the controller's queries.
type Tx struct {
	ctx context.Context
	tx  *sql.Tx
	// bumped lists the networks whose revision this transaction moved (or
	// which it deleted): their long-polls are woken after the commit.
	bumped []string
}

// Write runs fn in a transaction that is committed, durably, if fn returns
// nil and rolled back otherwise. Write transactions run one at a time.
func (st *Store) Write(ctx context.Context, fn func(*Tx) error) error {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	return st.run(ctx, fn)
}

// Read runs fn in a transaction, which gives it a consistent snapshot; it
// is always rolled back.
func (st *Store) Read(ctx context.Context, fn func(*Tx) error) error {
	return st.run(ctx, func(tx *Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return errReadOnly
	})
}

var errReadOnly = errors.New("read-only transaction")

func (st *Store) run(ctx context.Context, fn func(*Tx) error) error {
	sqlTx, err := st.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(&Tx{ctx: ctx, tx: sqlTx}); err != nil {
		sqlTx.Rollback()
		if err == errReadOnly {
			return nil
		}
		return err
	}
	return sqlTx.Commit()
}

// Records as stored.

type networkRec struct {
	ID        string
	Name      string
	CIDR      netip.Prefix
	MTU       int
	AutoAllow bool
	Revision  uint64
	Created   time.Time
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

const networkCols = `id, name, cidr, mtu, auto_allow, revision, created`

func scanNetwork(sc interface{ Scan(...any) error }) (networkRec, error) {
	var n networkRec
	var cidr string
	var rev, created int64
	if err := sc.Scan(&n.ID, &n.Name, &cidr, &n.MTU, &n.AutoAllow, &rev, &created); err != nil {
		return n, err
	}
	var err error
	if n.CIDR, err = netip.ParsePrefix(cidr); err != nil {
		return n, fmt.Errorf("network %s: stored cidr: %w", n.ID, err)
	}
	n.Revision, n.Created = uint64(rev), fromNanos(created)
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
	_, err := tx.tx.ExecContext(tx.ctx, `INSERT INTO networks (`+networkCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		n.ID, n.Name, n.CIDR.String(), n.MTU, n.AutoAllow, int64(n.Revision), nanos(n.Created))
	return err
}

func (tx *Tx) updateNetwork(n networkRec) error {
	_, err := tx.tx.ExecContext(tx.ctx, `UPDATE networks SET name = $2, mtu = $3, auto_allow = $4 WHERE id = $1`,
		n.ID, n.Name, n.MTU, n.AutoAllow)
	return err
}

// bump increments a network's revision: every member's configuration may
// have changed.
func (tx *Tx) bump(id string) error {
	if _, err := tx.tx.ExecContext(tx.ctx, `UPDATE networks SET revision = revision + 1 WHERE id = $1`, id); err != nil {
		return err
	}
	tx.changed(id)
	return nil
}

// changed marks network id for waking its long-polls after the commit.
func (tx *Tx) changed(id string) {
	if !slices.Contains(tx.bumped, id) {
		tx.bumped = append(tx.bumped, id)
	}
}

func (tx *Tx) deleteNetwork(id string) error {
	for _, q := range []string{
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
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT dest, via FROM routes WHERE network_id = $1`, networkID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []control.Route
	for rows.Next() {
		var dest, via string
		if err := rows.Scan(&dest, &via); err != nil {
			return nil, err
		}
		var r control.Route
		if r.Dest, err = netip.ParsePrefix(dest); err != nil {
			return nil, fmt.Errorf("stored route dest: %w", err)
		}
		if r.Via, err = netip.ParseAddr(via); err != nil {
			return nil, fmt.Errorf("stored route via: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (tx *Tx) insertRoute(networkID string, r control.Route) error {
	_, err := tx.tx.ExecContext(tx.ctx, `INSERT INTO routes (network_id, dest, via) VALUES ($1, $2, $3)`,
		networkID, r.Dest.String(), r.Via.String())
	return err
}

// deleteRoute removes the route to dest and reports whether there was one.
func (tx *Tx) deleteRoute(networkID string, dest netip.Prefix) (bool, error) {
	res, err := tx.tx.ExecContext(tx.ctx, `DELETE FROM routes WHERE network_id = $1 AND dest = $2`, networkID, dest.String())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// Members.

const memberCols = `network_id, node_id, identity, hostname, public_key, endpoints, observed, listen_port, state, address, requested, behind_nat, last_seen, version, created`

func scanMember(sc interface{ Scan(...any) error }) (memberRec, error) {
	var m memberRec
	var eps, observed, requested string
	var addr sql.NullString
	var lastSeen, created int64
	if err := sc.Scan(&m.NetworkID, &m.NodeID, &m.Identity, &m.Hostname, &m.PublicKey, &eps, &observed, &m.ListenPort,
		&m.State, &addr, &requested, &m.BehindNAT, &lastSeen, &m.Version, &created); err != nil {
		return m, err
	}
	bad := func(what string, err error) error { return fmt.Errorf("member %s: stored %s: %w", m.NodeID, what, err) }
	if err := json.Unmarshal([]byte(eps), &m.Endpoints); err != nil {
		return m, bad("endpoints", err)
	}
	var err error
	if observed != "" {
		if m.Observed, err = netip.ParseAddrPort(observed); err != nil {
			return m, bad("observed endpoint", err)
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
	m.LastSeen, m.Created = fromNanos(lastSeen), fromNanos(created)
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
		m.State, nullAddr(m.Address), textAddr(m.Requested), m.BehindNAT, nanos(m.LastSeen), m.Version, nanos(m.Created)}, nil
}

func (tx *Tx) insertMember(m memberRec) error {
	args, err := memberArgs(m)
	if err != nil {
		return err
	}
	_, err = tx.tx.ExecContext(tx.ctx, `INSERT INTO members (`+memberCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`, args...)
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
		behind_nat = $12, last_seen = $13, version = $14, created = $15
		WHERE network_id = $1 AND node_id = $2`, args...)
	return err
}

func (tx *Tx) deleteMember(networkID, node string) error {
	_, err := tx.tx.ExecContext(tx.ctx, `DELETE FROM members WHERE network_id = $1 AND node_id = $2`, networkID, node)
	return err
}

// Tokens.

const tokenCols = `id, network_id, secret_hash, reusable, allow, address, expires, uses, note, used_by, created`

func scanToken(sc interface{ Scan(...any) error }) (tokenRec, error) {
	var t tokenRec
	var addr sql.NullString
	var expires, created int64
	if err := sc.Scan(&t.ID, &t.NetworkID, &t.SecretHash, &t.Reusable, &t.Allow, &addr, &expires,
		&t.Uses, &t.Note, &t.UsedBy, &created); err != nil {
		return t, err
	}
	var err error
	if t.Address, err = parseNullAddr(addr); err != nil {
		return t, fmt.Errorf("token %s: stored address: %w", t.ID, err)
	}
	t.Expires, t.Created = fromNanos(expires), fromNanos(created)
	return t, nil
}

func (tx *Tx) insertToken(t tokenRec) error {
	_, err := tx.tx.ExecContext(tx.ctx, `INSERT INTO tokens (`+tokenCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		t.ID, t.NetworkID, t.SecretHash, t.Reusable, t.Allow, nullAddr(t.Address), nanos(t.Expires),
		t.Uses, t.Note, t.UsedBy, nanos(t.Created))
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

func (tx *Tx) recordTokenUse(id string, uses int, usedBy string) error {
	_, err := tx.tx.ExecContext(tx.ctx, `UPDATE tokens SET uses = $2, used_by = $3 WHERE id = $1`, id, uses, usedBy)
	return err
}
