// Package nstest runs kernel tests inside network namespaces they create.
//
// Tests of netlink, nftables and the WireGuard device must not touch the
// host's network, and they must run for real: Gate's CI is root and these
// tests fail, never skip, when they cannot get a namespace. Main re-executes
// the test binary inside a fresh named namespace, so every thread of the
// test process (wireguard-go's included) lives there; New makes further
// namespaces for peers, and StartDHCP runs a real DHCP server (dnsmasq)
// in one. Everything is deleted, and stopped, when the tests end.
package nstest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const envInside = "GATE_NSTEST_NS"

// Main is called from a package's TestMain. Outside a namespace it creates
// one, re-runs the test binary in it with the same arguments and exits with
// its status; inside, it runs the tests. Not being root is a failure.
func Main(m *testing.M) { MainRun(m.Run) }

// MainRun is Main for a TestMain whose tests run through another wrapper
// of m.Run, such as pgtest.Run: inside the namespace it calls run and exits
// with what it returns.
func MainRun(run func() int) {
	if os.Getenv(envInside) != "" {
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "nstest: ip link set lo up: %v: %s\n", err, out)
			os.Exit(1)
		}
		os.Exit(run())
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "nstest: these tests need root (network namespaces, netlink, nftables); run them as root, as CI does")
		os.Exit(1)
	}
	name := "gt-" + randomHex(4)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "nstest: ip netns add %s: %v: %s\n", name, err, out)
		os.Exit(1)
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "nstest:", err)
		os.Exit(1)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", name, self}, os.Args[1:]...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envInside+"="+name)
	err = cmd.Run()
	exec.Command("ip", "netns", "del", name).Run()
	code := 0
	if err != nil {
		code = 1
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() > 0 {
			code = ee.ExitCode()
		}
	}
	os.Exit(code)
}

// Current returns the name of the namespace Main put the tests in.
func Current(t testing.TB) string {
	t.Helper()
	n := os.Getenv(envInside)
	if n == "" {
		t.Fatal("nstest: not inside a test namespace; call nstest.Main from TestMain")
	}
	return n
}

// New creates a named namespace with lo up, deleted when t ends.
func New(t testing.TB) string {
	t.Helper()
	name := "gt-" + randomHex(4)
	Run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	Run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// Run runs a command and fails the test if it fails; it returns stdout and
// stderr together.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// In runs a command inside namespace ns (ip netns exec) and fails the test
// if it fails.
func In(t testing.TB, ns, name string, args ...string) string {
	t.Helper()
	return Run(t, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// Veth creates a veth pair: local end in the test's own namespace, peer end
// in namespace peerNS, both up, deleted when t ends (the kernel frees a
// deleted namespace's links only later, which a test run again with
// -count would trip over). It returns nothing; the names are the caller's.
func Veth(t testing.TB, local, peer, peerNS string) {
	t.Helper()
	Run(t, "ip", "link", "add", local, "type", "veth", "peer", "name", peer, "netns", peerNS)
	t.Cleanup(func() { exec.Command("ip", "link", "del", local).Run() })
	Run(t, "ip", "link", "set", local, "up")
	Run(t, "ip", "-n", peerNS, "link", "set", peer, "up")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
