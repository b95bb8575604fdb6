package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gatenet/gate/services/localapi"
)

func TestPrintConfigStatus(t *testing.T) {
	var b bytes.Buffer
	printConfigStatus(&b, &localapi.ConfigStatus{
		State: localapi.ConfigRejected, Source: "aws: http://169.254.169.254", InstanceID: "i-0a1b2c3d4e5f60718",
		Errors:   []string{`gate.networks[0].address: "10.98.0.300" is not an IP address (user-data (aws), line 7)`},
		Warnings: []string{"gate.colour: unknown key (user-data (aws), line 3)"},
	})
	want := `config: REJECTED (the last good configuration stays in force); read from aws: http://169.254.169.254, instance i-0a1b2c3d4e5f60718
config error: gate.networks[0].address: "10.98.0.300" is not an IP address (user-data (aws), line 7)
config warning: gate.colour: unknown key (user-data (aws), line 3)
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	printConfigStatus(&b, nil)
	if b.Len() != 0 {
		t.Errorf("nil status printed %q", b.String())
	}
}

func TestUpRejectsBadCloud(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"up", "--cloud", "gcp"}, "test", &out, &errb); code != 2 || !strings.Contains(errb.String(), "want auto, nocloud, digitalocean, aws or off") {
		t.Errorf("exit %d, %q", code, errb.String())
	}
}
