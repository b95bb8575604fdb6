package cli

import (
	"flag"
	"os"

	"golang.org/x/sys/unix"

	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/tui"
)

func runTUI(e *env, args []string) error {
	fs := flag.NewFlagSet("tui", flag.ContinueOnError)
	socket := socketFlag(fs)
	ascii := fs.Bool("ascii", false, "ASCII borders (default: from $TERM; vt100 and linux get ASCII)")
	keepCaps := fs.Bool("keep-capabilities", false, "do not drop capabilities (by default the console gives up every capability before it starts: it changes things only through the daemon)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, "no arguments"); err != nil {
		return err
	}
	// A serial line has no size: the kernel says 0x0 and a full-screen
	// program cannot lay itself out. Assume the classic 80x24 (the EC2
	// serial console's size) unless someone set one.
	if ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ); err == nil && (ws.Row == 0 || ws.Col == 0) {
		unix.IoctlSetWinsize(0, unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80})
	}
	if !*keepCaps {
		if err := dropCapabilities(); err != nil {
			return err
		}
	}
	return tui.Run(localapi.NewClient(*socket), os.Stdin, os.Stdout, *ascii)
}
