// Package nodeconfig owns the node's one configuration document: its
// schema, its parsing (YAML or JSON), its validation, and the merging of
// the layers that configure a node, with the provenance of every value.
//
// The document (version 1):
//
//	version: 1
//	hostname: aws-gate-1
//	wan: eth0                          # the NIC facing the internet; default: the NIC with the default route
//	interfaces:
//	  eth0: {dhcp: true}
//	  eth1:
//	    mac: "02:00:00:00:00:01"       # optional: find the NIC by MAC; the key is then its name in Gate
//	    address: 172.16.1.10/24        # host address with its prefix length
//	    gateway: 172.16.1.1            # inside the address's subnet
//	    dns: [172.16.0.2]
//	networks:
//	  - join: gate://203.0.113.5:8443/d363b4e9bd3d6aa8?pin=sha256:...&token=...
//	    address: 192.168.254.11        # requested overlay address; the controller decides
//	    gateway:
//	      serve: [172.16.0.0/16]       # local CIDRs reached through this node
//	      lan: eth0                    # NIC facing them; default: the default-route NIC (one-NIC AWS NAT instance: LAN = WAN)
//	      masquerade: {to_lan: false, to_internet: true}
//	  - join: 0123456789abcdef         # a bare network ID needs controller: (and may carry token:)
//	    controller: gate://203.0.113.5:8443?pin=sha256:...
//	    token: ...
//	controller:                        # run a controller on this node
//	  listen: ":8443"
//	  advertise: "203.0.113.5:8443"
//	  db: "postgres://gate@db.internal/gate?sslmode=verify-full&passfile=/var/lib/gate/controller/pgpass"   # optional: PostgreSQL, for replicas; default SQLite on the state disk
//
// A document is JSON when its first non-blank character is '{', YAML
// otherwise. Parsing is strict: an unknown key is a warning naming its path
// ("networks[0].gatway: unknown key"); a value of the wrong type or shape is
// an error naming its path and why ("interfaces.eth0.address: \"10.0.0.300/24\"
// is not a CIDR"). Validate checks the whole document (canonical CIDRs,
// gateways inside their subnet, duplicate addresses, join strings). An
// invalid document is rejected whole: callers keep their last good one.
//
// controller.db may hold a password. No message quotes it; Format and
// Config.Redacted write it as RedactDB does ("xxxxx" for the password),
// and Merge warns when it comes from user-data, which other processes on
// a cloud host can read.
//
// # Layers
//
// A node's effective configuration is merged from layers, later wins:
// image defaults < preseed file < cloud metadata (hostname, NoCloud
// network-config) < user-data < console/CLI < kernel command line. Merge
// replaces whole units: each top-level key (hostname, wan, networks,
// controller) and, under interfaces, each NIC. A null value removes the unit
// a lower layer set (as in JSON Merge Patch, RFC 7386): "controller: null"
// stops running a controller that the preseed asked for. Merge reports the
// layer each unit came from, and validates the result; its errors name the
// layer (and line) where the offending value was written.
//
// The kernel command line overrides single keys for recovery; see
// ParseCmdline for its syntax.
//
// # Joins and gateway roles
//
// It owns the domain's values for taking part in a network, whatever
// surface they arrive through (this document, the CLI, the console, cloud
// user-data, the local API): JoinRequest, a request to be a member, and
// Gateway, a node's gateway role, with their one validator each
// (JoinRequest.Check, Gateway.Problems and Check), and ParseJoin, the one
// reading of a join string or a bare network ID with its controller and
// token. services/localapi carries these types as they are; the agent
// stores Gateway in its networks.json; none of them defines or checks its
// own. OverlayInterface is the name of a network's WireGuard interface.
//
// This package is pure: it reads no files, touches no kernel and talks to
// no network. It imports nothing above it (not services/localapi, not the
// agent): the wire and the daemon are built on it, not it on them. Where documents come from is services/cloud's business (and
// the daemon's); applying them is the reconciler's.
package nodeconfig
