// Package controller holds networks, members, address pools, routes and join
// tokens, and serves the /v1 API that services/control defines.
//
// It owns the controller's state directory: its TLS identity
// (controller.key), the admin token (admin-token), the database
// (controller.db, unless it is in PostgreSQL) and the controller address
// members are given (controller.url). Everything a member must be told is
// derived from the database: a member's configuration (control.MemberConfig)
// is a pure function of its network, the network's routes and the other
// members (buildMemberConfig defines it). Syncs are answered from an
// in-memory view of each network (view.go) that every write patches from the
// rows it touched, read back inside its own transaction, so the view cannot
// drift from the database; the tests hold the two together. The view lets a
// sync cost what changed rather than what the network holds: each peer entry
// is encoded once and its bytes go to every member, and a member that can
// apply deltas (sync ?delta=1) gets only the peers that changed since the
// revision it holds, found through each member's rev and the tombstones of
// deleted members, both kept in the database so that deltas survive a
// restart. A sync that changes nothing but when the member was last seen
// writes nothing; last-seen times are written every 30 s.
//
// Admin calls carry a bearer token: the admin-token file's, the built-in
// admin, or a named admin token with a role (viewer, operator, admin) and
// a scope (the whole controller, or some networks), which every admin
// route is checked against (access.go). Every change through the admin
// API, and every attempt refused, goes into the audit log; a change's
// entry is written in the change's own transaction (audit.go).
//
// Why the rules live here: the controller is the only place that sees all
// members of a network at once, so it is where "no address is handed out
// twice", "a route's gateway lies inside the network" and "a denied member
// gets no peers" can be enforced. Every request is validated in full before
// anything is written, and every mutation runs as one unit (a savepoint in a
// transaction that writes queued together share: one fsync per group, see
// Store) that also bumps the network's revision when any member's
// configuration changes; members long-poll on that revision, so a change
// reaches them within a round trip.
//
// What it must not do: touch the kernel, hold a member's private keys (a
// member proves who it is with its own certificate; the controller only ever
// sees public keys), or log secrets (join token secrets and admin tokens
// never appear in logs or the audit log; only the SHA-256 of join tokens'
// and named admin tokens' secrets is stored).
//
// The store speaks database/sql with portable SQL ($n placeholders, plain
// TEXT/INTEGER/BOOLEAN columns) on the embedded, pure-Go SQLite by
// default, or on PostgreSQL (Config.DB, a postgres:// URL; pure-Go pgx)
// for a controller whose data must outlive one machine: the same schema
// and migrations, the few differences handled by dialect (store_pg.go).
package controller
