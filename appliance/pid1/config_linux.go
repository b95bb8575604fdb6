package pid1

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gatenet/gate/services/localapi"
)

// announceConfig prints one line on every console each time the state of
// the configuration document changes (its source found, applied or
// rejected), so that an operator at the console, and the boot tests,
// see errors in user-data without asking:
//
//	gate: config state=rejected source="nocloud: /dev/vdb (vfat CIDATA)" instance=iid-01 first_boot=false errors=1 warnings=1 uptime=5.92s: error: gate.networks[0].address: ... (user-data (nocloud), line 6); warning: gate.colour: unknown key (...)
//
// The daemon logs each error and warning on its own line too.
func announceConfig(c *consoles) {
	cl := localapi.NewClient(socket)
	last := ""
	for {
		time.Sleep(500 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := cl.Status(ctx)
		cancel()
		if err != nil || st.Config == nil || st.Config.State == localapi.ConfigPending {
			continue
		}
		head, items := configLine(st.Config)
		if head+items == last {
			continue
		}
		last = head + items
		fmt.Fprintf(c, "gate: %s uptime=%.2fs%s\n", head, uptime().Seconds(), items)
	}
}

// configLine renders the status as the console line's head (key=value
// fields) and its items (": error: ...; warning: ...", or "").
func configLine(s *localapi.ConfigStatus) (head, items string) {
	inst := s.InstanceID
	if inst == "" {
		inst = "-"
	}
	head = fmt.Sprintf("config state=%s source=%q instance=%s first_boot=%v errors=%d warnings=%d",
		s.State, s.Source, inst, s.FirstBoot, len(s.Errors), len(s.Warnings))
	var list []string
	for _, e := range s.Errors {
		list = append(list, "error: "+e)
	}
	for _, w := range s.Warnings {
		list = append(list, "warning: "+w)
	}
	if len(list) > 0 {
		items = ": " + strings.Join(list, "; ")
	}
	return head, strings.ReplaceAll(items, "\n", " ")
}
