package cli

import (
	"fmt"
	"io"

	"github.com/gatenet/gate/services/localapi"
)

// printConfigStatus prints where the configuration document came from and
// what was wrong with it, for `gate status`:
//
//	config: applied from nocloud: /dev/vdb (vfat CIDATA), instance iid-01 (first boot)
//	config error: networks[0].address: "192.168.254.300" is not an IP address (user-data (nocloud), line 6)
//	config warning: gate.colour: unknown key (user-data (nocloud), line 3)
func printConfigStatus(w io.Writer, c *localapi.ConfigStatus) {
	if c == nil {
		return
	}
	what := c.State
	switch c.State {
	case localapi.ConfigApplied:
		what = "applied from"
	case localapi.ConfigRejected:
		what = "REJECTED (the last good configuration stays in force); read from"
	case localapi.ConfigPending:
		what = "looking for sources; so far"
	}
	line := fmt.Sprintf("config: %s %s", what, orDash(c.Source))
	if c.InstanceID != "" {
		line += ", instance " + c.InstanceID
		if c.FirstBoot {
			line += " (first boot)"
		}
	}
	fmt.Fprintln(w, line)
	for _, e := range c.Errors {
		fmt.Fprintf(w, "config error: %s\n", e)
	}
	for _, e := range c.Warnings {
		fmt.Fprintf(w, "config warning: %s\n", e)
	}
}
