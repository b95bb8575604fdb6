package pid1

import (
	"testing"

	"github.com/gatenet/gate/services/localapi"
)

func TestConfigLine(t *testing.T) {
	for _, c := range []struct {
		s           localapi.ConfigStatus
		head, items string
	}{
		{localapi.ConfigStatus{State: "applied", Source: "none"},
			`config state=applied source="none" instance=- first_boot=false errors=0 warnings=0`, ""},
		{localapi.ConfigStatus{State: "rejected", Source: "nocloud: /dev/vdb (vfat CIDATA)", InstanceID: "iid-1",
			Errors: []string{"a: bad\nvalue"}, Warnings: []string{"b: unknown key"}},
			`config state=rejected source="nocloud: /dev/vdb (vfat CIDATA)" instance=iid-1 first_boot=false errors=1 warnings=1`,
			": error: a: bad value; warning: b: unknown key"},
	} {
		head, items := configLine(&c.s)
		if head != c.head || items != c.items {
			t.Errorf("configLine(%+v) =\n%q %q, want\n%q %q", c.s, head, items, c.head, c.items)
		}
	}
}
