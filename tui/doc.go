// Package tui is Gate's console: a bubbletea program that shows a node's
// state and lets an operator join and leave networks from the VGA console,
// a serial console or any terminal, in 80x24 and without a mouse.
//
// It is a client of the daemon's local API (services/localapi) and nothing
// else: it runs as its own process without network privileges, and it must
// never import netlink, nftables or WireGuard packages (a test enforces
// this). All I/O happens in tea.Cmds; Update and View never block. Live
// updates come from the API's watch long-poll, re-armed after each answer.
//
// Forms turn into API requests through pure functions (see join.go and
// nicform.go), which the tests pin down. They validate with the domain's
// one validator of each value (services/nodeconfig: ParseJoin,
// JoinRequest.Check, CheckInterfaceName, ...), never a rule of their own,
// so that a form says what the local API would.
package tui
