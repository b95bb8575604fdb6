package netcfg

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Handle talks rtnetlink to one network namespace.
type Handle struct {
	nl   *netlink.Handle
	conf *nl.SocketHandle // raw rtnetlink, same namespace, for what netlink.Handle lacks
	ns   netns.NsHandle   // the namespace, for WatchLinks; closed with the handle
}

// Open returns a handle on the current thread's network namespace.
func Open() (*Handle, error) {
	return OpenAt(netns.None())
}

// OpenAt returns a handle on namespace ns (the current one if ns is
// netns.None()). The sockets are made in ns; the calling thread does not
// stay there and the handle works from any thread.
func OpenAt(ns netns.NsHandle) (*Handle, error) {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("opening rtnetlink in namespace %s: %w", ns, err)
	}
	s, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("opening rtnetlink in namespace %s: %w", ns, err)
	}
	// Keep the namespace itself, for subscriptions made later from any
	// thread: the current one's now, or a copy of ns.
	var own netns.NsHandle
	if ns.IsOpen() {
		fd, derr := unix.FcntlInt(uintptr(ns), unix.F_DUPFD_CLOEXEC, 0)
		own, err = netns.NsHandle(fd), derr
	} else {
		own, err = netns.Get()
	}
	if err != nil {
		h.Close()
		s.Close()
		return nil, fmt.Errorf("opening rtnetlink in namespace %s: keeping the namespace: %w", ns, err)
	}
	return &Handle{nl: h, conf: &nl.SocketHandle{Socket: s}, ns: own}, nil
}

// Close releases the handle's sockets.
func (h *Handle) Close() {
	h.nl.Close()
	h.conf.Close()
	h.ns.Close()
}

// WatchLinks calls changed (on a goroutine of its own) after each link
// that appears or goes in the handle's namespace, and each change of a
// link's up, carrier or MTU, until done is closed. Errors of the
// subscription go to logf.
func (h *Handle) WatchLinks(done <-chan struct{}, changed func(), logf func(string, ...any)) error {
	ch := make(chan netlink.LinkUpdate, 64)
	stop := make(chan struct{})
	ns := h.ns
	err := netlink.LinkSubscribeWithOptions(ch, stop, netlink.LinkSubscribeOptions{
		Namespace: &ns,
		ErrorCallback: func(err error) {
			select {
			case <-stop: // the subscription's end, not news
			default:
				logf("watching links: %v", err)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("watching links: %w", err)
	}
	go func() {
		defer func() {
			close(stop)
			for range ch { // until the subscription closes it
			}
		}()
		type seen struct {
			flags uint32
			mtu   int
		}
		last := map[int]seen{}
		const mask = unix.IFF_UP | unix.IFF_LOWER_UP
		for {
			select {
			case <-done:
				return
			case u, ok := <-ch:
				if !ok {
					return
				}
				if u.Link == nil {
					continue
				}
				a := u.Link.Attrs()
				now := seen{a.RawFlags & mask, a.MTU}
				if u.Header.Type == unix.RTM_DELLINK {
					delete(last, a.Index)
				} else if prev, ok := last[a.Index]; ok && prev == now {
					continue
				} else {
					last[a.Index] = now
				}
				changed()
			}
		}
	}()
	return nil
}

// dumpRetries bounds the retries of a dump the kernel interrupted
// (NLM_F_DUMP_INTR: the table changed while it was being read).
const dumpRetries = 5

func retryDump[T any](f func() ([]T, error)) ([]T, error) {
	for i := 0; ; i++ {
		v, err := f()
		if errors.Is(err, netlink.ErrDumpInterrupted) && i < dumpRetries {
			continue
		}
		return v, err
	}
}

// Sync makes link lc.Name match lc: up, then the MTU (when set), the
// addresses and the Gate routes PlanLink says, adding before deleting.
// Routes are installed with protocol RouteProtocol in the main table, with
// "onlink" when they have a gateway, so they do not depend on the order in
// which addresses appear. Applying the same config twice changes nothing.
// Every failed op is reported, wrapped with what it tried, in one
// errors.Join; the ops that succeeded stay applied.
func (h *Handle) Sync(lc LinkConfig) error {
	link, err := h.nl.LinkByName(lc.Name)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", lc.Name, err)
	}
	var errs []error
	// Up first: IPv4 refuses routes through a link that is down
	// (ENETDOWN, "Nexthop device is not up"), and drops them when it goes
	// down.
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := h.nl.LinkSetUp(link); err != nil {
			errs = append(errs, fmt.Errorf("ip link set dev %s up: %w", lc.Name, err))
		}
	}
	// A second round re-plans after applying, in case the kernel undid
	// part of the first behind our back (see promoteSecondaries; if that
	// could not be set, the lost secondary address and routes come back
	// here). The second round is normally empty.
	for round := 0; round < 2; round++ {
		cur, err := h.observe(link, lc.IPv4Only)
		if err != nil {
			return fmt.Errorf("syncing %s: %w", lc.Name, err)
		}
		ops := PlanLink(cur, lc)
		if len(ops) == 0 {
			break
		}
		if deletesIPv4Addr(ops) {
			if err := h.promoteSecondaries(link); err != nil {
				errs = append(errs, err)
			}
		}
		for _, op := range ops {
			if err := h.apply(link, op); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			break
		}
	}
	return errors.Join(errs...)
}

func deletesIPv4Addr(ops []Op) bool {
	for _, op := range ops {
		if op.Kind == DelAddr && op.Addr.Addr().Is4() {
			return true
		}
	}
	return false
}

// Observe returns the link's MTU, addresses (without the kernel's IPv6
// link-local ones) and the routes through it that carry RouteProtocol.
func (h *Handle) Observe(name string) (LinkConfig, error) {
	link, err := h.nl.LinkByName(name)
	if err != nil {
		return LinkConfig{}, fmt.Errorf("observing %s: %w", name, err)
	}
	lc, err := h.observe(link, false)
	if err != nil {
		return LinkConfig{}, fmt.Errorf("observing %s: %w", name, err)
	}
	return lc, nil
}

func (h *Handle) observe(link netlink.Link, v4only bool) (LinkConfig, error) {
	// Look again: the MTU may have changed since the caller looked.
	fresh, err := h.nl.LinkByIndex(link.Attrs().Index)
	if err != nil {
		return LinkConfig{}, err
	}
	lc := LinkConfig{Name: fresh.Attrs().Name, MTU: fresh.Attrs().MTU, IPv4Only: v4only}
	family := netlink.FAMILY_ALL
	if v4only {
		family = netlink.FAMILY_V4
	}
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return h.nl.AddrList(fresh, family) })
	if err != nil {
		return LinkConfig{}, fmt.Errorf("listing addresses: %w", err)
	}
	for _, a := range addrs {
		p, ok := prefixOf(a.IPNet)
		if !ok || (p.Addr().Is6() && p.Addr().IsLinkLocalUnicast()) {
			continue
		}
		lc.Addrs = append(lc.Addrs, p)
	}
	routes, err := h.gateRoutes(fresh)
	if err != nil {
		return LinkConfig{}, err
	}
	for _, r := range routes {
		dst, ok := prefixOf(r.Dst)
		if r.Dst == nil && r.Family != unix.AF_INET6 {
			dst, ok = netip.PrefixFrom(netip.IPv4Unspecified(), 0), true // the default route
		}
		if !ok || v4only && dst.Addr().Is6() {
			continue
		}
		via, _ := netip.AddrFromSlice(r.Gw)
		lc.Routes = append(lc.Routes, Route{Dst: dst.Masked(), Via: via.Unmap(), Metric: r.Priority})
	}
	return lc, nil
}

// gateRoutes lists the main-table routes through link with RouteProtocol.
func (h *Handle) gateRoutes(link netlink.Link) ([]netlink.Route, error) {
	filter := &netlink.Route{LinkIndex: link.Attrs().Index, Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}
	mask := netlink.RT_FILTER_OIF | netlink.RT_FILTER_PROTOCOL | netlink.RT_FILTER_TABLE
	routes, err := retryDump(func() ([]netlink.Route, error) {
		return h.nl.RouteListFiltered(netlink.FAMILY_ALL, filter, mask)
	})
	if err != nil {
		return nil, fmt.Errorf("listing routes: %w", err)
	}
	return routes, nil
}

func (h *Handle) apply(link netlink.Link, op Op) error {
	var err error
	switch op.Kind {
	case SetMTU:
		err = h.nl.LinkSetMTU(link, op.MTU)
	case AddAddr:
		err = h.nl.AddrAdd(link, &netlink.Addr{IPNet: ipNet(op.Addr)})
	case DelAddr:
		err = h.nl.AddrDel(link, &netlink.Addr{IPNet: ipNet(op.Addr)})
	case AddRoute:
		err = h.nl.RouteAdd(kernelRoute(link, op.Route))
	case ReplaceRoute:
		err = h.nl.RouteReplace(kernelRoute(link, op.Route))
	case DelRoute:
		err = h.nl.RouteDel(kernelRoute(link, op.Route))
	default:
		err = fmt.Errorf("unknown op kind %d", op.Kind)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

func kernelRoute(link netlink.Link, r Route) *netlink.Route {
	kr := &netlink.Route{
		LinkIndex: link.Attrs().Index,
		Dst:       ipNet(r.Dst.Masked()),
		Protocol:  RouteProtocol,
		Priority:  r.Metric,
		Table:     unix.RT_TABLE_MAIN,
	}
	if r.Via.IsValid() {
		kr.Gw = net.IP(r.Via.AsSlice())
		kr.Flags = int(netlink.FLAG_ONLINK)
	} else if r.Dst.Addr().Is4() {
		kr.Scope = netlink.SCOPE_LINK // as "ip route add D dev L" does
	}
	return kr
}

// RemoveRoutes deletes the routes with RouteProtocol through link name,
// and no other route. Gate calls it when it leaves a network, before the
// link goes (the kernel would drop them with the link, but an explicit
// teardown says what happened and works on links Gate does not delete).
func (h *Handle) RemoveRoutes(name string) error {
	link, err := h.nl.LinkByName(name)
	if err != nil {
		return fmt.Errorf("removing routes of %s: %w", name, err)
	}
	routes, err := h.gateRoutes(link)
	if err != nil {
		return fmt.Errorf("removing routes of %s: %w", name, err)
	}
	var errs []error
	for _, r := range routes {
		if err := h.nl.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("ip route del %s dev %s proto %d metric %d: %w", r.Dst, name, RouteProtocol, r.Priority, err))
		}
	}
	return errors.Join(errs...)
}

// LinkByDefaultRoute returns the name of the link that holds the IPv4
// default route of the main table (the one with the lowest metric), or ""
// when there is none. With a multipath default route it names the first
// hop's link.
func (h *Handle) LinkByDefaultRoute() (string, error) {
	filter := &netlink.Route{Table: unix.RT_TABLE_MAIN}
	routes, err := retryDump(func() ([]netlink.Route, error) {
		return h.nl.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return "", fmt.Errorf("listing IPv4 routes: %w", err)
	}
	best, bestMetric := 0, -1
	for _, r := range routes {
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones != 0 {
				continue
			}
		}
		if r.Type != unix.RTN_UNICAST {
			continue
		}
		idx := r.LinkIndex
		if idx == 0 && len(r.MultiPath) > 0 {
			idx = r.MultiPath[0].LinkIndex
		}
		if idx != 0 && (bestMetric < 0 || r.Priority < bestMetric) {
			best, bestMetric = idx, r.Priority
		}
	}
	if best == 0 {
		return "", nil
	}
	link, err := h.nl.LinkByIndex(best)
	if err != nil {
		return "", fmt.Errorf("default route's link %d: %w", best, err)
	}
	return link.Attrs().Name, nil
}

// InterfaceAddrs returns the global-scope addresses of every up,
// non-loopback link, IPv4 and IPv6, e.g. for reporting endpoints; IPv6
// addresses that failed duplicate address detection or are deprecated are
// left out. The
// caller leaves out its own overlay links (InterfaceAddrsExcept does).
func (h *Handle) InterfaceAddrs() ([]netip.Prefix, error) {
	return h.interfaceAddrs(nil)
}

// InterfaceAddrsExcept is InterfaceAddrs without the named links, and with
// only the addresses.
func (h *Handle) InterfaceAddrsExcept(names ...string) ([]netip.Addr, error) {
	skip := make(map[string]bool, len(names))
	for _, n := range names {
		skip[n] = true
	}
	ps, err := h.interfaceAddrs(skip)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, len(ps))
	for i, p := range ps {
		out[i] = p.Addr()
	}
	return out, nil
}

func (h *Handle) interfaceAddrs(skip map[string]bool) ([]netip.Prefix, error) {
	links, err := retryDump(h.nl.LinkList)
	if err != nil {
		return nil, fmt.Errorf("listing links: %w", err)
	}
	ok := make(map[int]bool)
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagUp != 0 && a.Flags&net.FlagLoopback == 0 && !skip[a.Name] {
			ok[a.Index] = true
		}
	}
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return h.nl.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if !ok[a.LinkIndex] || a.Scope != int(netlink.SCOPE_UNIVERSE) || a.Flags&(unix.IFA_F_DADFAILED|unix.IFA_F_DEPRECATED) != 0 {
			continue
		}
		if p, valid := prefixOf(a.IPNet); valid {
			out = append(out, p)
		}
	}
	return out, nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	ones, bits := n.Mask.Size()
	if bits == 0 || (a.Is4() && bits != 32) {
		if a.Is4() && bits == 128 && ones >= 96 {
			ones -= 96
		} else {
			return netip.Prefix{}, false
		}
	}
	return netip.PrefixFrom(a, ones), true
}

func ipNet(p netip.Prefix) *net.IPNet {
	a := p.Addr()
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(p.Bits(), a.BitLen())}
}
