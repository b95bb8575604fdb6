// Package controller holds networks, members, address pools, routes and join
// tokens, and serves the /v1 API that services/control defines.
//
// It owns the controller's state directory: its TLS identity
// (controller.key), the admin token (admin-token), the database
// (controller.db) and the controller address members are given
// (controller.url). Everything a member must be told is derived from the
// database: a member's configuration (control.MemberConfig) is a pure
// function of its network, the network's routes and the other members, built
// fresh on every join and sync, so there is no second copy that could drift.
//
// Why the rules live here: the controller is the only place that sees all
// members of a network at once, so it is where "no address is handed out
// twice", "a route's gateway lies inside the network" and "a denied member
// gets no peers" can be enforced. Every request is validated in full before
// anything is written, and every mutation is one database transaction that
// also bumps the network's revision when any member's configuration changes;
// members long-poll on that revision, so a change reaches them within a round
// trip.
//
// What it must not do: touch the kernel, hold a member's private keys (a
// member proves who it is with its own certificate; the controller only ever
// sees public keys), or log secrets (join token secrets and the admin token
// never appear in logs; only their SHA-256 is stored for join tokens).
//
// The store speaks database/sql with portable SQL ($n placeholders, plain
// TEXT/INTEGER/BOOLEAN columns) on the embedded, pure-Go SQLite; a
// PostgreSQL DSN can be added to Store for a highly available controller.
package controller
