// Package control defines the protocol between members, admins and the
// controller: the /v1 JSON types, the join string, node identities and the
// pinned, mutually authenticated TLS that carries it all.
//
// Why TLS with pins rather than a web PKI: a controller is self-hosted and
// usually has no DNS name or public certificate. Its identity is the SHA-256
// of its public key, which travels inside the join string, so a member that
// holds a join string can verify the controller without any CA. A member in
// turn proves it holds its node key by presenting a self-signed client
// certificate made from that key; the controller derives the node ID from the
// key it saw in the handshake. No bearer secret identifies a node, so nothing
// a member sends can be replayed to impersonate it. Admin calls carry an
// admin token over the same pinned channel.
//
// A controller run as several replicas shares one key, so one pin: its
// join strings list every replica's address (JoinString.Replicas), and each
// connection, to whichever address, is held to that pin.
//
// This package holds no state and talks to no kernel; the controller
// (services/controller) serves it and the agent (services/agent) and the
// admin CLI use its Client.
package control
