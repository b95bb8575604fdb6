package controller

import (
	"net/http"
	"net/netip"

	"github.com/gatenet/gate/services/control"
)

// Address allocation is pure: the pool of a network is its CIDR minus the
// network and broadcast addresses, and an address is free when no member of
// the network holds it and nothing promises it. The database's UNIQUE
// (network_id, address) is the last line of defence; these functions make
// sure it is never hit.
//
// Promises keep an address for what an admin meant it for, so that no
// member can take it first by asking for it or by being handed it from the
// pool: the next hop of a route (a member given that address would receive
// the route's traffic) and the address a live join token promises (the
// node that joins with it must get it). Only an admin gives a promised
// address away: `member set-ip` may name a route's next hop (that is how a
// gateway gets it, before or after the route is made) but not a token's
// address, which belongs to whoever joins with the token.

// taken says who holds, or is promised, the addresses of a network.
type taken struct {
	members  map[netip.Addr]string // address -> the node ID holding it
	promised map[netip.Addr]string // address -> what keeps it ("the next hop of route ...")
}

// usedAddresses returns the addresses held by members, except the member
// skip (whose own address does not count against it).
func usedAddresses(members []memberRec, skip string) map[netip.Addr]string {
	used := make(map[netip.Addr]string, len(members))
	for _, m := range members {
		if m.Address.IsValid() && m.NodeID != skip {
			used[m.Address] = m.NodeID
		}
	}
	return used
}

// promises returns what keeps each promised address: the routes' next hops
// and live tokens' addresses (tokens, by token ID).
func promises(routes []control.Route, tokens map[netip.Addr]string) map[netip.Addr]string {
	out := make(map[netip.Addr]string, len(routes)+len(tokens))
	for a, id := range tokens {
		out[a] = "promised by join token " + id
	}
	for _, r := range routes {
		out[r.Via] = "the next hop of route " + r.Dest.String()
		for _, b := range r.Backups {
			out[b] = "a backup next hop of route " + r.Dest.String()
		}
	}
	return out
}

// allocate returns the lowest free host address of cidr. It is
// deterministic: the same members always give the same answer.
func allocate(cidr netip.Prefix, t taken) (netip.Addr, error) {
	last := broadcast(cidr)
	for a := cidr.Masked().Addr().Next(); a.IsValid() && a != last; a = a.Next() {
		if t.why(a) == "" {
			return a, nil
		}
	}
	return netip.Addr{}, errorf(http.StatusConflict,
		"network %s has no free addresses: all %d usable addresses are assigned or reserved", cidr, usable(cidr))
}

// why says why a is not free ("" when it is).
func (t taken) why(a netip.Addr) string {
	if node, ok := t.members[a]; ok {
		return "is already assigned to member " + node
	}
	if why, ok := t.promised[a]; ok {
		return "is reserved: " + why
	}
	return ""
}

// usable returns the number of host addresses of an IPv4 prefix (/8../30).
func usable(cidr netip.Prefix) uint64 {
	return uint64(1)<<(32-cidr.Bits()) - 2
}

// checkFree checks that a is a usable address of cidr that no other member
// holds and nothing promises; what names the address in errors ("address",
// "token address").
func checkFree(what string, cidr netip.Prefix, t taken, a netip.Addr) error {
	if err := checkHostAddress(what, cidr, a); err != nil {
		return err
	}
	if why := t.why(a); why != "" {
		return conflict("%s %s %s", what, a, why)
	}
	return nil
}

// pickAddress chooses an address for a member that is becoming allowed:
// the wanted address if it is valid and free, else the lowest free one.
// It returns the reason the wanted address was passed over, if it was.
func pickAddress(cidr netip.Prefix, t taken, want netip.Addr) (addr netip.Addr, passedOver error, err error) {
	if want.IsValid() {
		if passedOver = checkFree("requested address", cidr, t, want); passedOver == nil {
			return want, nil, nil
		}
	}
	addr, err = allocate(cidr, t)
	return addr, passedOver, err
}
