package nstest

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

func TestDHCPArgs(t *testing.T) {
	for _, tc := range []struct {
		args, want []string
	}{
		{nil, dhcpDefaults},
		{[]string{"--dhcp-range=10.77.0.100,10.77.0.110,255.255.255.0,2m", "--dhcp-authoritative"}, []string{
			"--dhcp-option=option:router,10.77.0.1", "--dhcp-option=option:dns-server,10.77.0.53",
			"--dhcp-option=option:domain-name,gate.test", "--dhcp-option=58,3", "--dhcp-option=59,6",
			"--dhcp-range=10.77.0.100,10.77.0.110,255.255.255.0,2m", "--dhcp-authoritative"}},
		// By number for an option the defaults name, and the last of
		// several wins (Restart adds its arguments to StartDHCP's).
		{[]string{"--dhcp-option=3", "--dhcp-option=option:dns-server,10.77.0.53,10.77.0.54", "--dhcp-option=58,2", "--dhcp-option=58,4"}, []string{
			"--dhcp-range=10.77.0.50,10.77.0.60,255.255.255.0,2m", "--dhcp-option=option:domain-name,gate.test", "--dhcp-option=59,6",
			"--dhcp-option=3", "--dhcp-option=option:dns-server,10.77.0.53,10.77.0.54", "--dhcp-option=58,4"}},
	} {
		if got := dhcpArgs(tc.args); !slices.Equal(got, tc.want) {
			t.Errorf("dhcpArgs(%q)\n = %q\nwant %q", tc.args, got, tc.want)
		}
	}
}

// TestStartDHCP: dnsmasq starts with the settings asked for, restarts
// with more, and is gone when the test that started it ends.
func TestStartDHCP(t *testing.T) {
	ns := New(t)
	Veth(t, "dm0", "dm0s", ns)
	In(t, ns, "ip", "addr", "add", "10.77.0.1/24", "dev", "dm0s")
	var pids []int
	t.Run("server", func(t *testing.T) {
		s := StartDHCP(t, ns, "dm0s")
		pids = append(pids, s.cmd.Process.Pid)
		if s.Count("DHCP, IP range 10.77.0.50 -- 10.77.0.60") != 1 {
			t.Errorf("dnsmasq does not serve the default range")
		}
		s.Stop()
		s.Stop()
		s.Restart(t, "--dhcp-range=10.77.0.100,10.77.0.110,255.255.255.0,2m")
		pids = append(pids, s.cmd.Process.Pid)
		if s.Count("DHCP, IP range 10.77.0.100 -- 10.77.0.110") != 1 || s.Count("DHCP, sockets bound") != 2 {
			t.Errorf("the restarted dnsmasq does not serve the new range on the same log")
		}
	})
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("dnsmasq %d still there after its test (%v)", pid, err)
		}
	}
}

// fatalTB records a Fatal and ends the goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatal(a ...any) { f.msg = fmt.Sprint(a...); runtime.Goexit() }
func (f *fatalTB) Fatalf(format string, a ...any) {
	f.msg = fmt.Sprintf(format, a...)
	runtime.Goexit()
}

func fatal(t *testing.T, f func(tb testing.TB)) string {
	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); f(tb) }()
	<-done
	return tb.msg
}

// TestStartDHCPFails: no dnsmasq, or one that cannot start, fails the
// test with the reason (never a skip), and leaves nothing running.
func TestStartDHCPFails(t *testing.T) {
	ns := New(t)
	Veth(t, "dm1", "dm1s", ns)
	t.Run("not installed", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		if msg := fatal(t, func(tb testing.TB) { StartDHCP(tb, ns, "dm1s") }); !strings.Contains(msg, "dnsmasq not found") {
			t.Errorf("without dnsmasq: %q", msg)
		}
	})
	t.Run("bad option", func(t *testing.T) {
		msg := fatal(t, func(tb testing.TB) { StartDHCP(tb, ns, "dm1s", "--no-such-option") })
		if !strings.Contains(msg, "exited") || !strings.Contains(msg, "bad command line options") {
			t.Errorf("dnsmasq given a bad option: %q", msg)
		}
	})
}
