package pid1

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gatenet/gate/services/localapi"
)

const socket = "/run/gate/gate.sock"

// Main is the appliance's init. It never returns.
func Main(version string) {
	c := &consoles{out: nil}
	defer func() {
		// The kernel panics when init exits: stay, say why, and keep
		// reaping so that the console still shows what happened.
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stdout, "gate: PID 1 failed: %v\n%s", r, debug.Stack())
		}
		for {
			var ws unix.WaitStatus
			unix.Wait4(-1, &ws, 0, nil)
			time.Sleep(time.Second)
		}
	}()
	os.Setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
	mountErr := mountAll(earlyMounts(), func(f string, a ...any) { fmt.Printf("gate: "+f+"\n", a...) })
	c = openConsoles()
	c.logf("gate %s starting as PID 1", version)
	if mountErr != nil {
		c.logf("early mounts: %v", mountErr)
	}
	run(version, c)
}

func run(version string, c *consoles) {
	cmdline, _ := os.ReadFile("/proc/cmdline")
	params := parseCmdline(string(cmdline))

	start := time.Now()
	n, err := loadModules(c.logf)
	if err != nil {
		c.logf("kernel modules: %v", err)
	}
	c.logf("loaded %d kernel modules in %v", n, time.Since(start).Round(time.Millisecond))

	power := make(chan powerAction, 1)
	watchPower(power, c.logf)

	if msg, err := mountState(params, 5*time.Second); err != nil {
		c.logf("state: %v", err)
	} else {
		c.logf("%s", msg)
	}
	if bits, err := seedRandom(); err != nil {
		c.logf("seeding the RNG: %v", err)
	} else if bits > 0 {
		c.logf("RNG seeded with %d bits from the last boot", bits)
	}
	if name, err := setHostname(params); err != nil {
		c.logf("%v", err)
	} else {
		c.logf("hostname %s", name)
	}
	if err := loopbackUp(); err != nil {
		c.logf("%v", err)
	}
	if err := os.MkdirAll("/run/gate", 0o700); err != nil {
		c.logf("making /run/gate: %v", err)
	}

	// The appliance manages its NICs (DHCP, static settings, the WAN).
	args := []string{"gate", "up", "--state", stateDir, "--socket", socket, "--firewall", "strict", "--allow-input", "", "--manage-nics", "--cloud", "auto",
		// The dataplane's packet buffers are bounded (services/tunnel);
		// the soft limit is the safety net for the rest (many peers, a
		// controller run in-process from user-data) on a 512 MB droplet.
		// make bench measures what it costs (variant gate-256m).
		"--memory-limit", "256MiB"}
	if p, msg, err := copyPreseed(time.Second); err != nil {
		c.logf("preseed: %v", err)
	} else {
		c.logf("%s", msg)
		if p != "" {
			args = append(args, "--preseed", p)
		}
	}

	r := newReaper()
	daemon := &service{
		name: "gate up",
		path: "/proc/self/exe",
		args: args,
		env:  []string{"PATH=" + os.Getenv("PATH"), "HOME=/", "GATE_SOCKET=" + socket},
		log:  newRing(256 << 10),
		out:  c,
		logf: c.logf,
		r:    r,
	}
	go daemon.run()
	w := &watcher{
		api: localapi.NewClient(socket), wait: 2 * time.Second,
		version: version, out: c, logf: c.logf, uptime: uptime,
		onReady: func() {
			// getrandom may block until the daemon is up: save the seed
			// for the next boot now.
			if err := saveSeed(); err != nil {
				c.logf("saving the RNG seed: %v", err)
			}
			// The console program, once the daemon answers
			// (session_linux.go).
			startSessions(c, r)
		},
	}
	go w.run(context.Background())

	a := <-power
	shutdown(a, []*service{daemon}, c)
}

// IsInit reports whether this process is the appliance's init: run as
// /init (how the kernel starts it from the initramfs), or PID 1 with no
// command. `gate up` as PID 1 of a container stays the daemon.
func IsInit(args []string) bool {
	if len(args) > 0 && args[0] == "/init" {
		return true
	}
	return os.Getpid() == 1 && len(args) <= 1
}
