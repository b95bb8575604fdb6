// Package netcfg owns the kernel's addresses and routes on the interfaces
// Gate made (its WireGuard links) and, on the appliance, on the machine's
// NICs (their IPv4 addresses and default route, from DHCP or static
// settings, and /etc/resolv.conf), and the IPv4 forwarding switch.
//
// It talks to the kernel through a vishvananda/netlink handle bound to one
// network namespace. Each Sync observes a link in one list call per kind
// (addresses, routes), plans the change with the pure function PlanLink and
// applies it adding before deleting, so traffic keeps a path while the
// configuration moves. It touches nothing it did not make: on its links it
// owns every address (the kernel's own IPv6 link-local ones excepted), but
// of the routes only those with protocol RouteProtocol; it never changes a
// link it was not asked about, nor anything in another table.
package netcfg

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
)

// RouteProtocol marks the routes Gate installs (rtnetlink's rtm_protocol,
// "proto 241" in ip-route(8)). 241 (0xf1) is not in iproute2's rt_protos
// list nor used by a known routing daemon (bird 12, zebra 11, dhcp 16,
// babel 42, bgp 186 ...). Gate only ever deletes routes that carry this
// protocol, and only on its own links: a route someone added by hand (proto
// boot or static) stays.
const RouteProtocol = netlink.RouteProtocol(241)

// DefaultMetric is the metric of a managed route whose Metric is 0, as in
// the reference setup: "172.16.0.0/16 via 192.168.254.11 dev X metric 5000".
// A high metric lets an operator's own routes to the same destination win.
const DefaultMetric = 5000

// LinkConfig is the state Gate wants on (or observed on) one of its links.
type LinkConfig struct {
	Name   string
	MTU    int            // 0: leave the MTU alone
	Addrs  []netip.Prefix // addresses on the link, e.g. 192.168.254.170/24; not IPv6 link-local (those are the kernel's)
	Routes []Route        // routes through the link
	// IPv4Only limits what Gate owns on the link to IPv4 addresses and
	// routes: on a NIC, IPv6 addresses come from router advertisements
	// (the kernel's SLAAC), which Gate must leave alone.
	IPv4Only bool
}

// Route is one route through a Gate link, in the main table.
type Route struct {
	Dst    netip.Prefix
	Via    netip.Addr // zero: directly on the link
	Metric int        // 0: DefaultMetric
}

// String renders the route as ip-route(8) arguments without the device.
func (r Route) String() string {
	var b strings.Builder
	b.WriteString(r.Dst.String())
	if r.Via.IsValid() {
		b.WriteString(" via ")
		b.WriteString(r.Via.String())
	}
	return b.String()
}

func (r Route) normal() Route {
	r.Dst = r.Dst.Masked()
	if r.Metric == 0 {
		r.Metric = DefaultMetric
	}
	return r
}

// key is what tells two kernel routes apart within a table: destination
// and metric (rtm_tos aside). Two routes with the same key are one route,
// whose gateway "ip route replace" changes.
type routeKey struct {
	Dst    netip.Prefix
	Metric int
}

// OpKind is what an Op does.
type OpKind int

// The kinds of Op, in the order PlanLink emits them.
const (
	SetMTU       OpKind = iota // ip link set dev L mtu N
	AddAddr                    // ip addr add P dev L
	AddRoute                   // ip route add D [via G] dev L proto 241 metric M
	ReplaceRoute               // ip route replace ..., same key, other gateway
	DelRoute                   // ip route del ...
	DelAddr                    // ip addr del P dev L
)

// Op is one change to one link.
type Op struct {
	Kind  OpKind
	Link  string
	MTU   int          // SetMTU
	Addr  netip.Prefix // AddAddr, DelAddr
	Route Route        // AddRoute, ReplaceRoute, DelRoute; Metric normalised
}

// String renders the op as the ip(8) command that would do the same.
func (o Op) String() string {
	switch o.Kind {
	case SetMTU:
		return fmt.Sprintf("ip link set dev %s mtu %d", o.Link, o.MTU)
	case AddAddr:
		return fmt.Sprintf("ip addr add %s dev %s", o.Addr, o.Link)
	case DelAddr:
		return fmt.Sprintf("ip addr del %s dev %s", o.Addr, o.Link)
	case AddRoute, ReplaceRoute, DelRoute:
		verb := map[OpKind]string{AddRoute: "add", ReplaceRoute: "replace", DelRoute: "del"}[o.Kind]
		onlink := ""
		if o.Route.Via.IsValid() && o.Kind != DelRoute {
			onlink = " onlink"
		}
		return fmt.Sprintf("ip route %s %s dev %s%s proto %d metric %d", verb, o.Route, o.Link, onlink, RouteProtocol, o.Route.Metric)
	}
	return fmt.Sprintf("netcfg.Op(%d)", o.Kind)
}

// PlanLink returns the ops that take link cur to want: the MTU when want
// sets one and it differs, then the missing addresses, the missing routes,
// the routes whose gateway changed (replaced in place), and last the
// routes and addresses that are not wanted. Adding before deleting keeps a
// path for traffic while a link's configuration moves. The result is
// deterministic (sorted) and empty when cur already matches want.
// Link names are taken from want.
//
// cur must list only what Gate owns: every address of the link except the
// kernel's IPv6 link-local ones, and the routes with RouteProtocol (that is
// what Observe returns).
func PlanLink(cur, want LinkConfig) []Op {
	var ops []Op
	link := want.Name
	if want.MTU != 0 && want.MTU != cur.MTU {
		ops = append(ops, Op{Kind: SetMTU, Link: link, MTU: want.MTU})
	}

	haveAddr := make(map[netip.Prefix]bool)
	for _, a := range cur.Addrs {
		haveAddr[a] = true
	}
	wantAddr := make(map[netip.Prefix]bool)
	for _, a := range want.Addrs {
		wantAddr[a] = true
	}
	for _, a := range sortedKeys(wantAddr, comparePrefix) {
		if !haveAddr[a] {
			ops = append(ops, Op{Kind: AddAddr, Link: link, Addr: a})
		}
	}

	haveRoute := make(map[routeKey]Route)
	for _, r := range cur.Routes {
		r = r.normal()
		haveRoute[routeKey{r.Dst, r.Metric}] = r
	}
	wantRoute := make(map[routeKey]Route)
	for _, r := range want.Routes {
		r = r.normal()
		wantRoute[routeKey{r.Dst, r.Metric}] = r // a later duplicate wins
	}
	var replace []Op
	for _, k := range sortedKeys(wantRoute, compareRouteKey) {
		w := wantRoute[k]
		h, ok := haveRoute[k]
		switch {
		case !ok:
			ops = append(ops, Op{Kind: AddRoute, Link: link, Route: w})
		case h.Via != w.Via:
			replace = append(replace, Op{Kind: ReplaceRoute, Link: link, Route: w})
		}
	}
	ops = append(ops, replace...)
	for _, k := range sortedKeys(haveRoute, compareRouteKey) {
		if _, ok := wantRoute[k]; !ok {
			ops = append(ops, Op{Kind: DelRoute, Link: link, Route: haveRoute[k]})
		}
	}
	for _, a := range sortedKeys(haveAddr, comparePrefix) {
		if !wantAddr[a] {
			ops = append(ops, Op{Kind: DelAddr, Link: link, Addr: a})
		}
	}
	return ops
}

func sortedKeys[K comparable, V any](m map[K]V, f func(a, b K) int) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, f)
	return ks
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}

func compareRouteKey(a, b routeKey) int {
	if c := comparePrefix(a.Dst, b.Dst); c != 0 {
		return c
	}
	return cmp.Compare(a.Metric, b.Metric)
}
