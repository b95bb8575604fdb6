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
		// Every thread: capabilities and no_new_privs are per thread.
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, task := range tasks {
			b, _ := os.ReadFile("/proc/self/task/" + task.Name() + "/status")
			for _, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(l, "Cap") || strings.HasPrefix(l, "NoNewPrivs") {
					os.Stdout.WriteString(task.Name() + " " + l + "\n")
				}
			}
		}
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
	if !strings.Contains(s, "ip link add:") || !strings.Contains(s, "NoNewPrivs") {
		t.Errorf("child did not report:\n%s", s)
	}
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || !strings.HasPrefix(f[1], "Cap") && f[1] != "NoNewPrivs:" {
			continue
		}
		want := "0000000000000000"
		if f[1] == "NoNewPrivs:" {
			want = "1"
		}
		if f[2] != want {
			t.Errorf("thread %s: %s %s, want %s", f[0], f[1], f[2], want)
		}
	}
	if strings.Contains(s, "STILL WORKS") {
		t.Error("the child could still add a link")
	}
}
