// Package pid1 is the appliance's init: what the kernel runs as /init from
// the initramfs. It owns the machine's life cycle and nothing else:
//
//   - the early mounts (a data table, like u-root's libinit), the kernel
//     modules carried in the initramfs (loaded in modules.dep order), the
//     loopback interface, the hostname and the RNG seed;
//   - the state partition, mounted at /var/lib/gate (see state_linux.go for
//     why it is ext4 made at build time and never formatted here);
//   - `gate up`, run as a supervised child process in its own process group
//     (restarted with backoff, output kept in a ring buffer and copied to
//     every console), and the orphans that land on PID 1;
//   - machine-readable lines on every console, derived from one watch of
//     the daemon's local API (the stream the console follows):
//     `gate: ready node=<id> version=<v> hostname=<h> firewall=<mode>
//     uptime=<seconds since boot>s` once it answers, then `gate: network
//     ...` and `gate: config ...` as the WAN and the configuration document
//     change (announce.go), which the boot tests wait for;
//   - clean poweroff and reboot: children stopped, filesystems synced and
//     unmounted, then reboot(2).
//
// It stays small on purpose (u-root's init is 81 lines, gokrazy's
// supervisor a page): the network, the tunnel and the firewall are the
// daemon's, reached only through its local API. PID 1 must never exit and
// never panic out, since the kernel panics when init dies: every step logs
// its error and carries on, and Main recovers and idles as a last resort.
package pid1
