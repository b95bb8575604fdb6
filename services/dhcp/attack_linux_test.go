package dhcp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatenet/gate/services/netcfg"
	"github.com/gatenet/gate/services/nstest"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/vishvananda/netns"
)

// hostileServer runs a Go DHCP server (server4) on iface in namespace ns:
// it offers 10.78.0.50/24 from 10.78.0.1 with the options mods add, and
// answers a REQUEST with what request returns. The socket is made in ns
// on a goroutine whose thread never leaves it (a locked thread that
// ends is thrown away), so that this process's namespace stays as it was.
func hostileServer(t *testing.T, ns, iface string, offer []dhcpv4.Modifier, request func(*dhcpv4.DHCPv4) []dhcpv4.Modifier) {
	t.Helper()
	type result struct {
		conn *net.UDPConn
		err  error
	}
	ch := make(chan result)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		h, err := netns.GetFromName(ns)
		if err == nil {
			defer h.Close()
			err = netns.Set(h)
		}
		if err != nil {
			ch <- result{err: err}
			return
		}
		c, err := server4.NewIPv4UDPConn(iface, &net.UDPAddr{Port: dhcpv4.ServerPort})
		ch <- result{c, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("server socket in %s: %v", ns, r.err)
	}
	base := []dhcpv4.Modifier{
		dhcpv4.WithYourIP(net.IPv4(10, 78, 0, 50)),
		dhcpv4.WithServerIP(net.IPv4(10, 78, 0, 1)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 78, 0, 1))),
		dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
	}
	handler := func(conn net.PacketConn, _ net.Addr, m *dhcpv4.DHCPv4) {
		var mods []dhcpv4.Modifier
		switch m.MessageType() {
		case dhcpv4.MessageTypeDiscover:
			mods = append(append(slices.Clone(base), offer...), dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer))
		case dhcpv4.MessageTypeRequest:
			mods = append(slices.Clone(base), request(m)...)
		default:
			return
		}
		resp, err := dhcpv4.NewReplyFromRequest(m, mods...)
		if err != nil {
			t.Errorf("reply: %v", err)
			return
		}
		conn.WriteTo(resp.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort})
	}
	s, err := server4.NewServer(iface, nil, handler, server4.WithConn(r.conn))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); s.Serve() }()
	t.Cleanup(func() { s.Close(); <-done })
}

// logLines collects a client's log lines.
type logLines struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	l.t.Log(s)
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
}

func (l *logLines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// startClient runs the real client on iface (in this test's namespace).
func startClient(t *testing.T, iface string, logs *logLines) (*Client, chan Update) {
	updates := make(chan Update, 32)
	c := New(Config{Iface: iface, Hostname: "gate-test", Logf: logs.logf, OnUpdate: func(u Update) { updates <- u }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return c, updates
}

// TestAttackHostileServer: a DHCP server on the link (anyone there can be
// one) offers finding 7's domain name, DNS servers that are not unicast,
// an MTU past any NIC's, an infinite lease and junk in options Gate does
// not use. The client's lease carries none of it, resolv.conf made from
// the lease has no line the server wrote, and no log line carries a
// control character.
func TestAttackHostileServer(t *testing.T) {
	t.Parallel()
	srv := nstest.New(t)
	nstest.Veth(t, "dh7", "dh7s", srv)
	nstest.In(t, srv, "ip", "addr", "add", "10.78.0.1/24", "dev", "dh7s")
	bad := []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptDomainName(hostileDomain)),
		dhcpv4.WithDNS(net.IPv4(224, 0, 0, 251), net.IPv4(127, 0, 0, 1), net.IPv4bcast, net.IPv4(10, 78, 0, 53)),
		dhcpv4.WithRouter(net.IPv4(10, 78, 0, 255), net.IPv4(10, 78, 0, 1)),
		dhcpv4.WithGeneric(dhcpv4.OptionInterfaceMTU, []byte{0xff, 0xff}),
		dhcpv4.WithLeaseTime(0xffffffff),
		dhcpv4.WithOption(dhcpv4.OptHostName("evil\nnameserver 203.0.113.66")),
		dhcpv4.WithGeneric(dhcpv4.OptionDNSDomainSearchList, []byte("\x04corp\x00\x0bnameserver\n\x00")),
		dhcpv4.WithGeneric(dhcpv4.OptionClasslessStaticRoute, []byte{0, 203, 0, 113, 66}),
	}
	hostileServer(t, srv, "dh7s", bad, func(*dhcpv4.DHCPv4) []dhcpv4.Modifier {
		return append(slices.Clone(bad), dhcpv4.WithMessageType(dhcpv4.MessageTypeAck))
	})
	logs := &logLines{t: t}
	_, updates := startClient(t, "dh7", logs)
	l := next(t, updates, "bound", 15*time.Second).Lease

	if l.Addr != netip.MustParsePrefix("10.78.0.50/24") || l.Router != netip.MustParseAddr("10.78.0.1") {
		t.Errorf("lease %s router %s, want 10.78.0.50/24 via 10.78.0.1", l.Addr, l.Router)
	}
	if l.Domain != "" {
		t.Errorf("domain %q, want none", l.Domain)
	}
	if want := []netip.Addr{netip.MustParseAddr("10.78.0.53")}; !slices.Equal(l.DNS, want) {
		t.Errorf("DNS %v, want %v", l.DNS, want)
	}
	if l.MTU != 0 || l.Lifetime != maxLease || l.T1 <= time.Hour {
		t.Errorf("MTU %d lifetime %v T1 %v, want no MTU, %v, past an hour", l.MTU, l.Lifetime, l.T1, maxLease)
	}
	checkLease(t, l)

	// resolv.conf as the daemon makes it from a lease.
	r := netcfg.Resolver{Servers: l.DNS}
	if l.Domain != "" {
		r.Search = append(r.Search, l.Domain)
	}
	got := string(netcfg.RenderResolvConf(r))
	want := "# Written by gate from DHCP or static NIC settings; changes are overwritten.\nnameserver 10.78.0.53\n"
	if got != want {
		t.Errorf("resolv.conf\n%s\nwant\n%s", got, want)
	}

	lines := logs.all()
	quoted := false
	for _, s := range lines {
		printable(t, "log line", s)
		quoted = quoted || strings.Contains(s, `"corp\nnameserver 203.0.113.66\noptions ndots:15"`)
	}
	if !quoted {
		t.Errorf("no log line quotes the refused domain name: %q", lines)
	}
}

// TestAttackNAKMessage: a NAK's message (option 56) is the server's text;
// the client's last error, which the console and `gate interfaces` show,
// carries it escaped.
func TestAttackNAKMessage(t *testing.T) {
	t.Parallel()
	srv := nstest.New(t)
	nstest.Veth(t, "dh8", "dh8s", srv)
	nstest.In(t, srv, "ip", "addr", "add", "10.78.0.1/24", "dev", "dh8s")
	hostileServer(t, srv, "dh8s", nil, func(*dhcpv4.DHCPv4) []dhcpv4.Modifier {
		return []dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
			dhcpv4.WithOption(dhcpv4.OptMessage("no\nnameserver 203.0.113.66\x1b[2J\u202e"))}
	})
	logs := &logLines{t: t}
	c, _ := startClient(t, "dh8", logs)
	deadline := time.Now().Add(15 * time.Second)
	for c.Status().LastError == "" {
		if time.Now().After(deadline) {
			t.Fatal("no error after 15 s of NAKs")
		}
		time.Sleep(50 * time.Millisecond)
	}
	e := c.Status().LastError
	t.Logf("last error: %s", e)
	printable(t, "last error", e)
	if !strings.Contains(e, `no\nnameserver 203.0.113.66\x1b[2J\u202e`) {
		t.Errorf("last error %q does not show the message escaped", e)
	}
	for _, s := range logs.all() {
		printable(t, "log line", s)
	}
}
