package cli

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDropCapabilities runs the drop in a child process (it cannot be
// undone) and checks, as root, that the child then has no capabilities and
// cannot do what CAP_NET_ADMIN allows.
func TestDropCapabilities(t *testing.T) {
	if os.Getenv("GATE_TEST_DROP") == "1" {
		if err := dropCapabilities(); err != nil {
			os.Stdout.WriteString("drop: " + err.Error())
			os.Exit(3)
		}
		b, _ := os.ReadFile("/proc/self/status")
		os.Stdout.Write(b)
		out, err := exec.Command("ip", "link", "add", "gtcaptest", "type", "veth", "peer", "name", "gtcaptest1").CombinedOutput()
		if err == nil {
			exec.Command("ip", "link", "del", "gtcaptest").Run()
			os.Stdout.WriteString("\nNET_ADMIN STILL WORKS\n")
		} else {
			os.Stdout.WriteString("\nip link add: " + string(out))
		}
		os.Exit(0)
	}
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root, as CI runs it")
	}
	bin := os.Args[0]
	if cgoLinked {
		// gate is built without cgo; so must the binary that tries it be.
		bin = t.TempDir() + "/cli.test"
		build := exec.Command("go", "test", "-c", "-o", bin, ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building a cgo-free test binary: %v\n%s", err, out)
		}
	}
	cmd := exec.Command(bin, "-test.run=^TestDropCapabilities$")
	cmd.Env = append(os.Environ(), "GATE_TEST_DROP=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{"CapEff:\t0000000000000000", "CapPrm:\t0000000000000000", "CapBnd:\t0000000000000000", "NoNewPrivs:\t1", "ip link add:"} {
		if !strings.Contains(s, want) {
			t.Errorf("child lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "STILL WORKS") {
		t.Error("the child could still add a link")
	}
}
