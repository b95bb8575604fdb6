// Command trivialinit is the smallest useful init: it prints a ready line
// on the console and powers the machine off. `make bench` boots the same
// kernel with it and with Gate, so Gate's boot time can be read as a ratio
// to what the kernel and QEMU cost by themselves. It is not part of gate.
package main

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	up := time.Duration(ts.Nano())
	fmt.Fprintf(os.Stdout, "trivial: ready uptime=%.2fs\n", up.Seconds())
	unix.Sync()
	time.Sleep(100 * time.Millisecond)
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}
