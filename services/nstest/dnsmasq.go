package nstest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// DHCPServer is a real DHCP server for tests: dnsmasq serving DHCP only
// (no DNS) on one interface of a namespace the test made. StartDHCP
// starts it; it is stopped when the test ends.
type DHCPServer struct {
	NS, Iface string
	// Log is dnsmasq's log file (--log-dhcp: every DISCOVER, OFFER,
	// REQUEST, ACK and NAK); Count counts its lines.
	Log string
	// Leases is dnsmasq's lease file (--dhcp-leasefile). Restart keeps it,
	// so a restarted server remembers the leases it gave.
	Leases string

	args []string   // the arguments StartDHCP was given
	cmd  *exec.Cmd  // nil when stopped
	out  *os.File   // dnsmasq's stdout and stderr (Log+".out")
	done chan error // cmd.Wait's result
}

// dhcpDefaults are the DHCP settings a DHCPServer starts with (see
// StartDHCP) unless its arguments replace them.
var dhcpDefaults = []string{
	"--dhcp-range=10.77.0.50,10.77.0.60,255.255.255.0,2m",
	"--dhcp-option=option:router,10.77.0.1",
	"--dhcp-option=option:dns-server,10.77.0.53",
	"--dhcp-option=option:domain-name,gate.test",
	"--dhcp-option=58,3",
	"--dhcp-option=59,6",
}

// StartDHCP runs dnsmasq, DHCP only, on iface in namespace ns, which must
// have 10.77.0.1/24 on iface, and returns once dnsmasq has bound its
// socket. By default it serves addresses 10.77.0.50 to 10.77.0.60 of
// 10.77.0.0/24 with a 2-minute lease (dnsmasq's shortest; it ignores
// option 51), router 10.77.0.1, DNS server 10.77.0.53, domain gate.test,
// and T1 3 s and T2 6 s (options 58 and 59, so that renewals and rebinds
// happen within seconds).
//
// args are further dnsmasq options. Where several set the same thing
// (--dhcp-range, or --dhcp-option for the same option, by number or by
// the option: name the defaults use), the last wins, so an argument
// replaces a default: "--dhcp-range=10.77.0.100,10.77.0.110,255.255.255.0,2m"
// serves another range, "--dhcp-option=3" (option 3 with no value) sends
// no router, "--dhcp-option=58,2" sets T1 to 2 s. Other arguments (such
// as --dhcp-authoritative) are added.
//
// dnsmasq not being installed fails the test, never skips it (these tests
// must run for real, as CI does), as does dnsmasq not starting within
// 5 s. dnsmasq is stopped when t ends: nothing is left running.
func StartDHCP(t testing.TB, ns, iface string, args ...string) *DHCPServer {
	t.Helper()
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		t.Fatal("nstest: dnsmasq not found: install dnsmasq-base (make deps)")
	}
	dir := t.TempDir()
	s := &DHCPServer{NS: ns, Iface: iface, Log: filepath.Join(dir, "dnsmasq.log"), Leases: filepath.Join(dir, "leases"),
		args: slices.Clone(args)}
	t.Cleanup(s.Stop)
	s.start(t, s.args)
	return s
}

// Restart starts a stopped server again, with the same log and lease
// files and the arguments StartDHCP was given followed by args (which
// replace any of them that set the same thing, as in StartDHCP). It
// returns once dnsmasq has bound its socket.
func (s *DHCPServer) Restart(t testing.TB, args ...string) {
	t.Helper()
	if s.cmd != nil {
		t.Fatal("nstest: DHCPServer.Restart: the server is running; Stop it first")
	}
	s.start(t, append(slices.Clone(s.args), args...))
}

func (s *DHCPServer) start(t testing.TB, args []string) {
	t.Helper()
	cmdline := append([]string{"netns", "exec", s.NS, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
		"--port=0", "--interface=" + s.Iface, "--bind-interfaces", "--no-ping",
		"--dhcp-leasefile=" + s.Leases, "--pid-file=" + s.Leases + ".pid",
		"--log-dhcp", "--log-facility=" + s.Log,
	}, dhcpArgs(args)...)
	out, err := os.Create(s.Log + ".out")
	if err != nil {
		t.Fatal(err)
	}
	// ip netns exec execs dnsmasq in its own process, so killing cmd's
	// process kills dnsmasq.
	cmd := exec.Command("ip", cmdline...)
	cmd.Stdout, cmd.Stderr = out, out
	before := s.Count("DHCP, sockets bound")
	if err := cmd.Start(); err != nil {
		out.Close()
		t.Fatalf("nstest: starting dnsmasq: %v", err)
	}
	s.cmd, s.out, s.done = cmd, out, make(chan error, 1)
	go func() { s.done <- cmd.Wait() }()
	deadline := time.Now().Add(5 * time.Second)
	for s.Count("DHCP, sockets bound") == before {
		select {
		case err := <-s.done:
			s.done <- err
			s.Stop()
			b, _ := os.ReadFile(s.Log + ".out")
			t.Fatalf("nstest: dnsmasq on %s in %s exited (%v): %s", s.Iface, s.NS, err, bytes.TrimSpace(b))
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			b, _ := os.ReadFile(s.Log + ".out")
			t.Fatalf("nstest: dnsmasq on %s in %s did not start within 5 s: %s", s.Iface, s.NS, bytes.TrimSpace(b))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops dnsmasq and waits for it to exit; Restart starts it again.
// Stopping a stopped server does nothing.
func (s *DHCPServer) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.out.Close()
	s.cmd, s.out, s.done = nil, nil, nil
}

// Count returns how many lines of the log contain all of words: for
// example Count("DHCPACK(srv0)", "10.77.0.57") is how many times the
// server acknowledged that address on srv0.
func (s *DHCPServer) Count(words ...string) int {
	b, _ := os.ReadFile(s.Log)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if !slices.ContainsFunc(words, func(w string) bool { return !strings.Contains(line, w) }) {
			n++
		}
	}
	return n
}

// dhcpArgs returns dhcpDefaults followed by args, less every argument
// that a later one replaces (see dhcpKey).
func dhcpArgs(args []string) []string {
	all := append(slices.Clone(dhcpDefaults), args...)
	var out []string
	for i, a := range all {
		k := dhcpKey(a)
		if k != "" && slices.ContainsFunc(all[i+1:], func(b string) bool { return dhcpKey(b) == k }) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// dhcpOptionCodes are the numbers of the options dhcpDefaults names.
var dhcpOptionCodes = map[string]string{
	"option:router":      "3",
	"option:dns-server":  "6",
	"option:domain-name": "15",
	"option:T1":          "58",
	"option:T2":          "59",
}

// dhcpKey returns what arg sets, so that a later argument setting the same
// thing replaces it: "--dhcp-range" for a range, "--dhcp-option=N" for
// option N, "" for anything else.
func dhcpKey(arg string) string {
	name, val, _ := strings.Cut(arg, "=")
	switch name {
	case "--dhcp-range":
		return name
	case "--dhcp-option":
		opt, _, _ := strings.Cut(val, ",")
		if code, ok := dhcpOptionCodes[opt]; ok {
			opt = code
		}
		return name + "=" + opt
	}
	return ""
}
