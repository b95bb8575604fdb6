package controller

import (
	"net/http"
	"net/netip"
)

// Address allocation is pure: the pool of a network is its CIDR minus the
// network and broadcast addresses, and an address is free when no member of
// the network holds it. The database's UNIQUE (network_id, address) is the
// last line of defence; these functions make sure it is never hit.

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

// allocate returns the lowest free host address of cidr. It is
// deterministic: the same members always give the same answer.
func allocate(cidr netip.Prefix, used map[netip.Addr]string) (netip.Addr, error) {
	last := broadcast(cidr)
	for a := cidr.Masked().Addr().Next(); a.IsValid() && a != last; a = a.Next() {
		if _, taken := used[a]; !taken {
			return a, nil
		}
	}
	return netip.Addr{}, errorf(http.StatusConflict,
		"network %s has no free addresses: all %d usable addresses are assigned", cidr, usable(cidr))
}

// usable returns the number of host addresses of an IPv4 prefix (/8../30).
func usable(cidr netip.Prefix) uint64 {
	return uint64(1)<<(32-cidr.Bits()) - 2
}

// checkFree checks that a is a usable address of cidr that no other member
// holds; what names the address in errors ("address", "token address").
func checkFree(what string, cidr netip.Prefix, used map[netip.Addr]string, a netip.Addr) error {
	if err := checkHostAddress(what, cidr, a); err != nil {
		return err
	}
	if node, taken := used[a]; taken {
		return conflict("%s %s is already assigned to member %s", what, a, node)
	}
	return nil
}

// pickAddress chooses an address for a member that is becoming allowed:
// the wanted address if it is valid and free, else the lowest free one.
// It returns the reason the wanted address was passed over, if it was.
func pickAddress(cidr netip.Prefix, used map[netip.Addr]string, want netip.Addr) (addr netip.Addr, passedOver error, err error) {
	if want.IsValid() {
		if passedOver = checkFree("requested address", cidr, used, want); passedOver == nil {
			return want, nil, nil
		}
	}
	addr, err = allocate(cidr, used)
	return addr, passedOver, err
}
