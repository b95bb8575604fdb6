package tunnel

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatenet/gate/services/netcfg"
	"github.com/gatenet/gate/services/nstest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(envPeer); spec != "" {
		if err := runPeer(spec); err != nil {
			fmt.Fprintln(os.Stderr, "tunnel test peer:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	nstest.Main(m)
}

// testLogf returns a logf for wireguard-go that writes to t's log until
// the test ends (wireguard-go goroutines may outlive it by a moment).
func testLogf(t *testing.T) func(string, ...any) {
	var mu sync.Mutex
	done := false
	t.Cleanup(func() { mu.Lock(); done = true; mu.Unlock() })
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf(format, args...)
		}
	}
}

// newAddressed makes a Device with the address addr on its link, closed
// when t ends.
func newAddressed(t *testing.T, name string, addr netip.Prefix, opts ...Option) *Device {
	t.Helper()
	d, err := New(name, 1420, testLogf(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	nc, err := netcfg.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Sync(netcfg.LinkConfig{Name: name, MTU: 1420, Addrs: []netip.Prefix{addr}}); err != nil {
		t.Fatal(err)
	}
	return d
}

// channelPeer is the far side of the tunnel: a wireguard-go device in this
// process on a channel TUN (packets in and out through Go channels) and a
// real UDP socket on loopback. It stands for a remote member without a
// second kernel link and routing table in the namespace.
type channelPeer struct {
	dev  *device.Device
	tun  *tuntest.ChannelTUN
	priv Key
	port int
}

func newChannelPeer(t *testing.T) *channelPeer {
	t.Helper()
	priv := newKey(t)
	ct := tuntest.NewChannelTUN()
	logf := testLogf(t)
	dev := device.NewDevice(ct.TUN(), conn.NewDefaultBind(), &device.Logger{Verbosef: device.DiscardLogf, Errorf: logf})
	t.Cleanup(dev.Close)
	if err := dev.IpcSet("private_key=" + priv.hex() + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := dev.Up(); err != nil {
		t.Fatal(err)
	}
	text, err := dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	st, err := parseStatus(text, time.Now())
	if err != nil || st.ListenPort == 0 {
		t.Fatalf("channel peer status %+v, %v", st, err)
	}
	return &channelPeer{dev: dev, tun: ct, priv: priv, port: st.ListenPort}
}

// icmpEcho builds an IPv4 ICMP echo request from src to dst with a payload
// of n bytes.
func icmpEcho(src, dst netip.Addr, id, seq uint16, n int) []byte {
	pkt := make([]byte, 28+n)
	ip, icmp := pkt[:20], pkt[20:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(pkt)))
	ip[8] = 64 // TTL
	ip[9] = 1  // ICMP
	copy(ip[12:16], src.AsSlice())
	copy(ip[16:20], dst.AsSlice())
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	icmp[0] = 8 // echo request
	binary.BigEndian.PutUint16(icmp[4:], id)
	binary.BigEndian.PutUint16(icmp[6:], seq)
	for i := 8; i < len(icmp); i++ {
		icmp[i] = byte(i)
	}
	binary.BigEndian.PutUint16(icmp[2:], checksum(icmp))
	return pkt
}

// checksum is the Internet checksum (RFC 1071).
func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// ping sends an echo request into the channel peer, through the tunnel to
// the kernel behind the real device, and waits for the echo reply to come
// back out of the channel peer. Like ping(8) it sends again every second:
// WireGuard may drop a packet that waits for a handshake when handshakes
// cross (both sides starting one at once), and retries only the handshake.
func (p *channelPeer) ping(src, dst netip.Addr, seq uint16, size int, wait time.Duration) error {
	req := icmpEcho(src, dst, 0x6761, seq, size)
	deadline := time.After(wait)
	resend := time.NewTicker(time.Second)
	defer resend.Stop()
	send := func() error {
		select {
		case p.tun.Outbound <- req:
			return nil
		case <-deadline:
			return fmt.Errorf("channel TUN did not take the packet")
		}
	}
	if err := send(); err != nil {
		return err
	}
	for {
		select {
		case pkt := <-p.tun.Inbound:
			if len(pkt) < 28 || pkt[0]>>4 != 4 || pkt[9] != 1 {
				continue // not IPv4 ICMP
			}
			gotSrc, _ := netip.AddrFromSlice(pkt[12:16])
			gotDst, _ := netip.AddrFromSlice(pkt[16:20])
			icmp := pkt[20:]
			if icmp[0] != 0 || binary.BigEndian.Uint16(icmp[6:]) != seq {
				continue
			}
			if gotSrc != dst || gotDst != src || len(pkt) != len(req) || string(icmp[8:]) != string(req[28:]) {
				return fmt.Errorf("bad echo reply %s -> %s, %d bytes", gotSrc, gotDst, len(pkt))
			}
			return nil
		case <-resend.C:
			if err := send(); err != nil {
				return err
			}
		case <-deadline:
			return fmt.Errorf("no echo reply from %s within %s", dst, wait)
		}
	}
}

// handshakeWait is how long a first ping may wait for the session. Two
// devices that learn of each other at once can cross their handshakes;
// WireGuard settles that by retrying after Rekey-Timeout (5 s), sometimes
// twice.
const handshakeWait = 30 * time.Second

func peerStatus(t *testing.T, d *Device, k Key) (PeerStatus, bool) {
	t.Helper()
	st, err := d.Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Peers {
		if p.PublicKey == k {
			return p, true
		}
	}
	return PeerStatus{}, false
}

func TestDeviceTraffic(t *testing.T) {
	const name = "gtw0"
	a, err := New(name, 1420, testLogf(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			a.Close()
		}
	})
	if a.Name() != name {
		t.Errorf("Name() = %q", a.Name())
	}
	nc, err := netcfg.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	overlayA, overlayB := netip.MustParseAddr("10.99.0.1"), netip.MustParseAddr("10.99.0.2")
	if err := nc.Sync(netcfg.LinkConfig{Name: name, MTU: 1420, Addrs: []netip.Prefix{netip.PrefixFrom(overlayA, 24)}}); err != nil {
		t.Fatalf("netcfg.Sync: %v", err)
	}

	b := newChannelPeer(t)
	privA := newKey(t)
	cfg := Config{PrivateKey: privA, Peers: []Peer{{
		PublicKey:  b.priv.Public(),
		Endpoint:   netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(b.port)),
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(overlayB, 32)},
	}}}
	// B knows A before A is configured, so A's greeting handshake is the
	// one that makes the session. (When both learn of each other at once
	// their handshakes cross, and WireGuard may take a retry, 5 s or more,
	// to settle: not what this test is about.)
	portA := a.Port()
	if portA == 0 {
		t.Fatal("Port() = 0 on a device that is up")
	}
	if err := b.dev.IpcSet(fmt.Sprintf("public_key=%s\nendpoint=127.0.0.1:%d\nallowed_ip=%s/32\n",
		privA.Public().hex(), portA, overlayA)); err != nil {
		t.Fatal(err)
	}
	if err := a.Configure(cfg); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if a.Port() != portA {
		t.Fatalf("Port() = %d after Configure with ListenPort 0, want %d (unchanged)", a.Port(), portA)
	}

	// Configuring the same thing again sets nothing.
	sets := a.sets
	if err := a.Configure(cfg); err != nil {
		t.Fatal(err)
	}
	if a.sets != sets {
		t.Errorf("second Configure with the same Config made %d IpcSet calls", a.sets-sets)
	}

	// B's packet: handshake, encryption, A's kernel answers through its TUN.
	if err := b.ping(overlayB, overlayA, 1, 56, handshakeWait); err != nil {
		t.Fatalf("ping through the tunnel: %v", err)
	}
	// A full-MTU packet (1420 bytes) passes both ways too.
	if err := b.ping(overlayB, overlayA, 2, 1420-28, 5*time.Second); err != nil {
		t.Fatalf("full-MTU ping: %v", err)
	}

	// A burst of six times the device's buffer bound, sent without waiting:
	// the bounded pools hold the excess back instead of queueing it, so
	// the device neither stalls nor piles up memory, and the echoes come
	// back.
	if got := device.PreallocatedBuffersPerPool; got != DefaultBuffers {
		t.Errorf("wireguard-go's pool bound = %d, want %d", got, DefaultBuffers)
	}
	burst(t, b, overlayB, overlayA, 6*DefaultBuffers)

	ps, ok := peerStatus(t, a, b.priv.Public())
	if !ok {
		t.Fatal("peer B missing from Status")
	}
	if ps.LastHandshake.IsZero() || time.Since(ps.LastHandshake) > time.Minute {
		t.Errorf("LastHandshake = %v", ps.LastHandshake)
	}
	if ps.RxBytes == 0 || ps.TxBytes == 0 {
		t.Errorf("rx %d tx %d bytes after traffic", ps.RxBytes, ps.TxBytes)
	}
	if want := cfg.Peers[0].Endpoint; ps.Endpoint != want {
		t.Errorf("Endpoint = %v, want %v", ps.Endpoint, want)
	}
	st, err := a.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.PublicKey != privA.Public() || st.ListenPort != portA {
		t.Errorf("Status key %v port %d, want %v %d", st.PublicKey, st.ListenPort, privA.Public(), portA)
	}

	// A change to the peer is a delta: the session survives it.
	cfg.Peers[0].Keepalive = 25
	cfg.Peers[0].AllowedIPs = append(cfg.Peers[0].AllowedIPs, netip.MustParsePrefix("10.98.0.0/16"))
	if err := a.Configure(cfg); err != nil {
		t.Fatal(err)
	}
	if a.sets != sets+1 {
		t.Errorf("Configure with a change made %d IpcSet calls, want 1", a.sets-sets)
	}
	if err := b.ping(overlayB, overlayA, 3, 56, 5*time.Second); err != nil {
		t.Fatalf("ping after update: %v", err)
	}
	after, _ := peerStatus(t, a, b.priv.Public())
	if !after.LastHandshake.Equal(ps.LastHandshake) {
		t.Errorf("update made a new handshake (%v -> %v): session dropped", ps.LastHandshake, after.LastHandshake)
	}
	if after.Keepalive != 25 || len(after.AllowedIPs) != 2 {
		t.Errorf("after update: keepalive %d allowed %v", after.Keepalive, after.AllowedIPs)
	}

	// Removing the peer removes it, and traffic stops.
	if err := a.Configure(Config{PrivateKey: privA}); err != nil {
		t.Fatal(err)
	}
	if st, _ := a.Status(); len(st.Peers) != 0 {
		t.Errorf("peers after removal: %+v", st.Peers)
	}
	if err := b.ping(overlayB, overlayA, 4, 56, time.Second); err == nil {
		t.Error("ping still answered after the peer was removed")
	}

	// Close removes the kernel link.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := netlink.LinkByName(name); err == nil {
		t.Errorf("link %s still there after Close", name)
	}
	if err := a.Configure(cfg); err == nil {
		t.Error("Configure after Close succeeded")
	}
}

// burst sends n full-MTU echo requests from the channel peer as fast as it
// takes them and counts the replies: at least half must come back (the
// kernel's TUN queue drops some when the machine is busy; a stalled device
// answers at most the few hundred it had buffers for), and a ping after it
// must pass.
func burst(t *testing.T, p *channelPeer, src, dst netip.Addr, n int) {
	t.Helper()
	replies := make(chan int)
	go func() {
		got := 0
		idle := time.NewTimer(5 * time.Second)
		defer idle.Stop()
		for got < n {
			select {
			case pkt := <-p.tun.Inbound:
				if len(pkt) >= 28 && pkt[9] == 1 && pkt[20] == 0 && binary.BigEndian.Uint16(pkt[24:]) == 0x6275 {
					got++
				}
				idle.Reset(5 * time.Second)
			case <-idle.C:
				replies <- got
				return
			}
		}
		replies <- got
	}()
	for i := range n {
		select {
		case p.tun.Outbound <- icmpEcho(src, dst, 0x6275, uint16(i), 1420-28):
		case <-time.After(10 * time.Second):
			t.Fatalf("burst: the channel TUN took only %d of %d packets: the device stalled", i, n)
		}
	}
	if got := <-replies; got < n/2 {
		t.Errorf("burst of %d echo requests: %d replies, want at least %d", n, got, n/2)
	} else {
		t.Logf("burst of %d echo requests: %d replies", n, got)
	}
	if err := p.ping(src, dst, 9999, 56, 5*time.Second); err != nil {
		t.Errorf("ping after the burst: %v", err)
	}
}

func TestCheckBuffers(t *testing.T) {
	for _, tt := range []struct {
		n  int
		ok bool
	}{
		{DefaultBuffers, true},
		{0, true},
		{MinBuffers, true},
		{4096, true},
		{MinBuffers - 1, false}, // the device would stall at start
		{128, false},
		{-1, false},
	} {
		err := CheckBuffers(tt.n)
		if (err == nil) != tt.ok {
			t.Errorf("CheckBuffers(%d) = %v, want ok %v", tt.n, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), fmt.Sprint(MinBuffers)) {
			t.Errorf("CheckBuffers(%d) error %q does not name the minimum %d", tt.n, err, MinBuffers)
		}
	}
	if _, err := New("gtwbuf", 1420, nil, WithBuffers(MinBuffers-1)); err == nil || !strings.Contains(err.Error(), fmt.Sprint(MinBuffers)) {
		t.Errorf("New with too few buffers: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	_, err := New("gt-a-name-too-long-for-linux", 1420, nil)
	if err == nil || !strings.Contains(err.Error(), "gt-a-name-too-long-for-linux") {
		t.Errorf("New with a bad name: %v", err)
	}
	a, err := New("gtw1", 1420, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// A fixed port in use by another device fails, and says so.
	b, err := New("gtw2", 1420, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	k1 := newKey(t)
	k2 := newKey(t)
	if err := a.Configure(Config{PrivateKey: k1, ListenPort: 51999}); err != nil {
		t.Fatal(err)
	}
	if a.Port() != 51999 {
		t.Errorf("Port() = %d, want 51999", a.Port())
	}
	err = b.Configure(Config{PrivateKey: k2, ListenPort: 51999})
	if err == nil || !strings.Contains(err.Error(), "gtw2") {
		t.Errorf("Configure with a port in use: %v", err)
	}
	if err := a.Configure(Config{PrivateKey: k1, Peers: []Peer{{PublicKey: k1.Public()}}}); err == nil || !strings.Contains(err.Error(), "own key") {
		t.Errorf("Configure with own key as peer: %v", err)
	}
}

// TestGreetHandshakesWithoutTraffic: a peer that already knows us gets a
// handshake as soon as we configure it, with no packet to carry; without
// the greeting WireGuard would wait for traffic (and, when the first
// attempt raced the peer's configuration, for its 5 s retry).
func TestGreetHandshakesWithoutTraffic(t *testing.T) {
	a, err := New("gtw1", 1420, testLogf(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	privA := newKey(t)
	const portA = 51999
	b := newChannelPeer(t)
	if err := b.dev.IpcSet(fmt.Sprintf("public_key=%s\nendpoint=127.0.0.1:%d\nallowed_ip=10.98.0.1/32\n", privA.Public().hex(), portA)); err != nil {
		t.Fatal(err)
	}
	if err := a.Configure(Config{PrivateKey: privA, ListenPort: portA, Peers: []Peer{{
		PublicKey: b.priv.Public(), Endpoint: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(b.port)),
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.98.0.2/32")},
	}}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(4 * time.Second) // under Rekey-Timeout: a retry would not count
	for {
		if p, ok := peerStatus(t, a, b.priv.Public()); ok && !p.LastHandshake.IsZero() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no handshake without traffic: the new peer was not greeted")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDeadPeerDoesNotStarveOthers: a host that keeps sending to a peer
// that never answers must not stall the device for everyone else. The
// packets wait (staged) for a handshake that never completes, holding
// pooled buffers; the device must let go of them before its readers run
// out, whatever the bound and however many packets one TUN read brings
// (a UDP GSO send of many small segments is one read of up to 128).
func TestDeadPeerDoesNotStarveOthers(t *testing.T) {
	tests := []struct {
		name     string
		buffers  int
		segments int // datagrams per send: 1, or a UDP GSO send of that many
		sends    int
	}{
		{"one datagram per read", DefaultBuffers, 1, 2 * DefaultBuffers},
		{"GSO reads of 110 segments", DefaultBuffers, 110, 40},
		{"GSO reads of 110 segments, 1024 buffers", 1024, 110, 40},
		{"GSO reads of 128 segments, 1000 buffers", 1000, 128, 40},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testDeadPeer(t, fmt.Sprintf("gtw3%d", i), tt.segments, tt.sends, WithBuffers(tt.buffers))
		})
	}
}

func testDeadPeer(t *testing.T, name string, segments, sends int, opts ...Option) {
	overlayA, overlayB := netip.MustParseAddr("10.97.0.1"), netip.MustParseAddr("10.97.0.2")
	dead := netip.MustParseAddr("10.97.0.3")
	a := newAddressed(t, name, netip.PrefixFrom(overlayA, 24), opts...)
	b := newChannelPeer(t)
	privA := newKey(t)
	privDead := newKey(t)
	// Nothing listens on the dead peer's endpoint.
	deadEP, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	deadPort := deadEP.LocalAddr().(*net.UDPAddr).Port
	deadEP.Close()
	// B first, as in TestDeviceTraffic: no crossing handshakes.
	if err := b.dev.IpcSet(fmt.Sprintf("public_key=%s\nendpoint=127.0.0.1:%d\nallowed_ip=%s/32\n", privA.Public().hex(), a.Port(), overlayA)); err != nil {
		t.Fatal(err)
	}
	if err := a.Configure(Config{PrivateKey: privA, Peers: []Peer{
		{PublicKey: b.priv.Public(), Endpoint: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(b.port)), AllowedIPs: []netip.Prefix{netip.PrefixFrom(overlayB, 32)}},
		{PublicKey: privDead.Public(), Endpoint: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(deadPort)), AllowedIPs: []netip.Prefix{netip.PrefixFrom(dead, 32)}},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := b.ping(overlayB, overlayA, 1, 56, handshakeWait); err != nil {
		t.Fatalf("ping before the dead peer's traffic: %v", err)
	}
	// A host keeps sending to the dead peer, more in all than the
	// device's spare buffers.
	s, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: dead.AsSlice(), Port: 9})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const segSize = 400
	if segments > 1 {
		rc, err := s.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT, segSize)
		}); err != nil || serr != nil {
			t.Fatalf("UDP_SEGMENT: %v %v", err, serr)
		}
	}
	for i := range sends {
		if _, err := s.Write(make([]byte, segments*segSize)); err != nil {
			t.Fatalf("send %d (%d datagrams) to the dead peer: %v", i, segments, err)
		}
		if segments > 1 || i%32 == 0 {
			time.Sleep(time.Millisecond) // let the TUN reader take them read by read
		}
	}
	for seq := uint16(2); seq < 5; seq++ {
		if err := b.ping(overlayB, overlayA, seq, 56, 5*time.Second); err != nil {
			t.Fatalf("ping to the live peer while the dead one has traffic staged: %v", err)
		}
	}
}
