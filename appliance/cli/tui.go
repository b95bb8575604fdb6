package cli

import (
	"flag"
	"os"

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
	if !*keepCaps {
		if err := dropCapabilities(); err != nil {
			return err
		}
	}
	return tui.Run(localapi.NewClient(*socket), os.Stdin, os.Stdout, *ascii)
}
