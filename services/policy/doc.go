// Package policy owns Gate's rule language: who, inside one network, may
// reach what. It parses and prints rules, checks a policy against a
// network, answers "would this packet pass, and why" (Decide), works out
// which other members each member needs as WireGuard peers (Peers), and
// compiles the rules that one member enforces (Compile) into a Ruleset
// that travels in that member's configuration. Keeping all of that in one
// pure package, importing nothing of Gate's but names, means the
// controller, the CLI and the members cannot come to disagree about what
// a rule says.
//
// # What a policy means
//
// A network's policy is an ordered list of rules, numbered from 1. For
// each packet (its source address, destination address, protocol and
// destination port) the rules are read from the top: the first rule that
// matches the packet decides whether it passes (allow) or is dropped
// (deny), and no later rule is read. A packet that no rule matches is
// dropped. Rules are written for the side that opens a connection: once
// a rule has allowed a connection, its replies always pass, whatever the
// rules say about the other direction.
//
// A rule matches a packet when one of the rule's from selectors selects
// its source address, one of its to selectors selects its destination
// address, and one of its services covers its protocol and destination
// port. The rule
//
//	allow from tag:web to tag:db on tcp/5432
//
// lets members tagged web open TCP connections to port 5432 of members
// tagged db; it allows nothing else.
//
// A new network starts with the single rule DefaultRules gives,
//
//	allow from any to any
//
// under which everything the network carries reaches everything else, as
// before policies existed. Removing that rule makes the network deny
// everything that no remaining rule allows.
//
// # Writing a rule
//
// A rule is one line:
//
//	ACTION from SELECTORS to SELECTORS [on SERVICES] [# NOTE]
//
// ACTION is allow or deny. SELECTORS is one selector or several separated
// by commas; a rule's from (or to) matches an address if any of its
// selectors does. A selector is one of:
//
//	any             every address the network carries: its overlay CIDR
//	                and every subnet that its members serve
//	members         every overlay address: the network's overlay CIDR
//	tag:NAME        the overlay addresses of the members tagged NAME
//	member:NODEID   the overlay addresses of that member
//	CIDR            the addresses of an IPv4 or IPv6 prefix, written in
//	                its canonical form (10.1.0.0/16, not 10.1.2.3/16); a
//	                bare address stands for that address alone (/32 or
//	                /128). It must lie inside the overlay CIDR or inside a
//	                subnet that a member serves.
//
// An address outside the overlay CIDR and the served subnets is matched by
// no selector but a CIDR that contains it, and Check refuses such CIDRs,
// so such a packet is always dropped.
//
// SERVICES is one service or several separated by commas:
//
//	tcp/5432        TCP to port 5432
//	tcp/8000-8100   TCP to any port from 8000 to 8100, both included
//	udp/53          UDP to port 53 (udp/LO-HI for a range)
//	tcp             TCP to any port
//	udp             UDP to any port
//	icmp            ICMP and ICMPv6
//	any             every protocol and port
//
// Ports run from 1 to 65535, and a range from its low end to its high
// end. Leaving out "on SERVICES" is the same as "on any". A note, after #, is
// kept with the rule and shown with it: printable ASCII, at most 200
// bytes.
//
// Keywords (allow, deny, from, to, on, any, members, tag:, member:, tcp,
// udp, icmp) are written in lower case; tag names and node IDs may be
// written in any case and are lowered. Spaces and tabs between words are
// free, around commas too. Each rule is printed (String) in one canonical
// form: single spaces, no space around commas, selectors and services in
// the order written with repeats removed, a prefix of one address written
// as the bare address, "on any" left out. That form is also the rule's
// JSON form: a JSON string.
//
// A rule is at most MaxRuleBytes long and lists at most MaxItems
// selectors in its from, MaxItems in its to and MaxItems services,
// counted as written; a policy holds at most MaxRules rules.
//
// # Tags
//
// Tags are names put on members (what a tag may be is names.Tag). A rule
// that names a tag no member has yet is valid: it matches nothing until a
// member gets the tag. Check returns such tags as warnings.
//
// # Where rules are enforced
//
// Each member enforces the rules as the receiving side: on the packets
// that reach it over the overlay, addressed to it or to be forwarded into
// a subnet it serves. The sending member does not filter. Compile gives a
// member the rules whose destination includes one of its overlay
// addresses (Ruleset.Input) or part of a subnet it serves as a gateway
// (Ruleset.Forward), with each destination narrowed to those addresses or
// subnets, in policy order and under their policy numbers. Sources stay
// as the rule wrote them, and every selector among them (any, members,
// tag:NAME, member:NODEID) becomes a named address set, so that a member
// joining or leaving a tag changes a set, not the rules. The controller
// sends the contents of any and members (prefixes, which change only with
// the routes); a member fills tag: and member: sets itself from its peers
// (Ruleset.Fill), whose tags and addresses it already holds. That is
// exact for what it enforces: WireGuard delivers a packet only from a
// peer whose allowed IPs hold its source, and a member's overlay address
// is in no one's allowed IPs but its own, so the only members a packet
// on the overlay can come from are peers. It is also what keeps policy
// cheap to push: a member joining changes one peer entry, which the
// others receive anyway, and a rule change sends only the rules. A
// member that no rule concerns gets an empty Ruleset, which drops
// everything it receives but replies.
package policy
