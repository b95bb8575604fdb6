package tunnel

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/gatenet/gate/services/netcfg"
	"github.com/gatenet/gate/services/nstest"
)

// envPeer, when set, makes the test binary the far side of
// TestBulkBothWays instead of running tests: a Device of its own in
// another namespace, with an echo server on its overlay address.
const envPeer = "GATE_TUNNEL_TEST_PEER"

// peerSpec is what the test tells its peer process.
type peerSpec struct {
	Key      Key
	Port     int
	Addr     netip.Prefix
	Peer     Key
	PeerAddr netip.Addr
}

// runPeer is the peer process: it brings up its device, echoes every TCP
// connection on its overlay address, port 7, and exits when its stdin
// closes (the test ended or died).
func runPeer(spec string) error {
	var s peerSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		return err
	}
	d, err := New("gtwpeer", 1420, func(string, ...any) {})
	if err != nil {
		return err
	}
	defer d.Close()
	nc, err := netcfg.Open()
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := nc.Sync(netcfg.LinkConfig{Name: d.Name(), MTU: 1420, Addrs: []netip.Prefix{s.Addr}}); err != nil {
		return err
	}
	if err := d.Configure(Config{PrivateKey: s.Key, ListenPort: s.Port, Peers: []Peer{{
		PublicKey: s.Peer, AllowedIPs: []netip.Prefix{netip.PrefixFrom(s.PeerAddr, 32)},
	}}}); err != nil {
		return err
	}
	l, err := net.Listen("tcp", netip.AddrPortFrom(s.Addr.Addr(), 7).String())
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// TestBulkBothWays drives bulk TCP in both directions at once through a
// Device and a peer Device in another namespace, over a veth: four
// connections to the peer's echo server, each writing and reading 48 MiB.
// The kernel's TCP hands the TUN large GSO reads in one direction while
// full batches arrive over UDP in the other, which is what deadlocked
// wireguard-go's bounded pools before Gate's patch (the TUN reader and the
// UDP receiver each stopped half way through a batch, holding the buffers
// the other waited for). The deadline only turns such a stall into a
// failure; nothing here measures speed.
func TestBulkBothWays(t *testing.T) {
	peerNS := nstest.New(t)
	nstest.Veth(t, "gtwbulk0", "gtwbulk1", peerNS)
	nstest.Run(t, "ip", "addr", "add", "192.0.2.1/24", "dev", "gtwbulk0")
	nstest.In(t, peerNS, "ip", "addr", "add", "192.0.2.2/24", "dev", "gtwbulk1")

	overlayA, overlayB := netip.MustParsePrefix("10.96.0.1/24"), netip.MustParsePrefix("10.96.0.2/24")
	a := newAddressed(t, "gtwbulk", overlayA)
	privA := newKey(t)
	privB := newKey(t)
	const portB = 51899
	spec, err := json.Marshal(peerSpec{
		Key: privB, Port: portB, Addr: overlayB,
		// No endpoint: the peer learns it from A's handshake, so the
		// two do not greet each other at once (crossing handshakes take
		// WireGuard's 5 s retry, or more, to settle).
		Peer: privA.Public(), PeerAddr: overlayA.Addr(),
	})
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	peer := exec.Command("ip", "netns", "exec", peerNS, self, "-test.run=^$")
	peer.Env = append(os.Environ(), envPeer+"="+string(spec))
	peer.Stderr = os.Stderr
	stdin, err := peer.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := peer.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := peer.Start(); err != nil {
		t.Fatal(err)
	}
	defer peer.Wait()
	defer stdin.Close()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("peer process: %q, %v", line, err)
	}

	if err := a.Configure(Config{PrivateKey: privA, Peers: []Peer{{
		PublicKey: privB.Public(), Endpoint: netip.MustParseAddrPort(fmt.Sprintf("192.0.2.2:%d", portB)),
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(overlayB.Addr(), 32)},
	}}}); err != nil {
		t.Fatal(err)
	}

	const conns, size = 4, 48 << 20
	start := time.Now()
	deadline := start.Add(handshakeWait + 60*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 2*conns)
	for i := range conns {
		c, err := (&net.Dialer{Deadline: deadline}).Dial("tcp", netip.AddrPortFrom(overlayB.Addr(), 7).String())
		if err != nil {
			t.Fatalf("connection %d to the peer's echo server: %v", i, err)
		}
		defer c.Close()
		if i == 0 {
			t.Logf("first connection after %v", time.Since(start).Round(time.Millisecond))
			start = time.Now()
		}
		c.SetDeadline(deadline)
		wg.Add(2)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for j := range buf {
				buf[j] = byte(j + i)
			}
			for sent := 0; sent < size; sent += len(buf) {
				if _, err := c.Write(buf); err != nil {
					errs <- fmt.Errorf("connection %d: write after %d of %d bytes: %w", i, sent, size, err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			n, err := io.CopyN(io.Discard, c, size)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					err = errors.New("traffic stalled")
				}
				errs <- fmt.Errorf("connection %d: echo: read %d of %d bytes: %w", i, n, size, err)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d MiB each way in %v", conns*size>>20, time.Since(start).Round(time.Millisecond))
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
