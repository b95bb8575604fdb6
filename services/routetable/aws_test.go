package routetable

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatenet/gate/services/cloud/cloudtest"
)

// fakeEC2 answers ReplaceRoute and CreateRoute as EC2's query API does,
// over a route table map, and refuses requests not signed with the
// instance role's key.
type fakeEC2 struct {
	mu     sync.Mutex
	routes map[string]string // "rtb-... 10.0.0.0/8" -> instance ID
	calls  []string
	fail   string // an error code to answer every call with
	msg    string
}

func (f *fakeEC2) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := r.ParseForm(); err != nil {
		http.Error(w, "", http.StatusBadRequest)
		return
	}
	action, table, dest, inst := r.Form.Get("Action"), r.Form.Get("RouteTableId"), r.Form.Get("DestinationCidrBlock"), r.Form.Get("InstanceId")
	f.calls = append(f.calls, action+" "+table+" "+dest+" "+inst)
	errorXML := func(code, msg string) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>req-1</RequestID></Response>`, code, msg)
	}
	if !strings.Contains(r.Header.Get("Authorization"), "Credential=ASIAFAKEROLEKEY/") {
		errorXML("AuthFailure", "not signed with the role's key")
		return
	}
	if f.fail != "" {
		errorXML(f.fail, f.msg)
		return
	}
	key := table + " " + dest
	switch action {
	case "ReplaceRoute":
		if _, ok := f.routes[key]; !ok {
			errorXML("InvalidRoute.NotFound", "no route with destination-cidr-block "+dest+" in route table "+table)
			return
		}
	case "CreateRoute":
		if _, ok := f.routes[key]; ok {
			errorXML("RouteAlreadyExists", "exists")
			return
		}
	default:
		errorXML("InvalidAction", action)
		return
	}
	f.routes[key] = inst
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><%sResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>req-1</requestId><return>true</return></%sResponse>`, action, action)
}

// instance is a fake IMDSv2 of an instance with a role.
func instance(items map[string]string) *cloudtest.IMDSv2 {
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	all := map[string]string{
		"iam/security-credentials/":             "gate-gateway",
		"iam/security-credentials/gate-gateway": `{"Code":"Success","LastUpdated":"2026-12-04T12:00:00Z","Type":"AWS-HMAC","AccessKeyId":"ASIAFAKEROLEKEY","SecretAccessKey":"secret","Token":"session","Expiration":"` + exp + `"}`,
	}
	for k, v := range items {
		all[k] = v
	}
	return &cloudtest.IMDSv2{InstanceID: "i-0abc1234def567890", Items: all}
}

func TestPoint(t *testing.T) {
	md := httptest.NewServer(instance(nil))
	defer md.Close()
	ec2 := &fakeEC2{routes: map[string]string{"rtb-0aaa1111bbb22233c 192.168.254.0/24": "i-0old0000000000000"}}
	api := httptest.NewServer(ec2)
	defer api.Close()
	a := &AWS{Tables: []string{"rtb-0aaa1111bbb22233c", "rtb-12345678"}, Metadata: md.URL, Endpoint: api.URL}
	overlay, def := netip.MustParsePrefix("192.168.254.0/24"), netip.MustParsePrefix("0.0.0.0/0")
	res, err := a.Point(context.Background(), []netip.Prefix{overlay, def})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"rtb-0aaa1111bbb22233c 192.168.254.0/24 replaced", "rtb-0aaa1111bbb22233c 0.0.0.0/0 created",
		"rtb-12345678 192.168.254.0/24 created", "rtb-12345678 0.0.0.0/0 created"}
	for i, r := range res {
		if got := fmt.Sprintf("%s %s %s", r.Table, r.Dest, r.Action); i >= len(want) || got != want[i] || r.Err != nil {
			t.Errorf("result %d: %s (%v)", i, got, r.Err)
		}
	}
	for k, inst := range ec2.routes {
		if inst != "i-0abc1234def567890" {
			t.Errorf("route %s goes to %s, want this instance", k, inst)
		}
	}
	if len(res) != len(want) || len(ec2.routes) != 4 {
		t.Errorf("%d results, %d routes: %v", len(res), len(ec2.routes), ec2.calls)
	}
}

// TestAttackPoint: what the metadata service and EC2 say is checked and
// escaped before it reaches a log line or the status.
func TestAttackPoint(t *testing.T) {
	for _, tc := range []struct {
		name  string
		items map[string]string
		fail  string
		msg   string
		want  string
	}{
		{name: "instance ID that is no ID", items: map[string]string{"instance-id": "i-1; rm -rf /\x1b[2J"}, want: `instance-id "i-1; rm -rf /\x1b[2J" is not an instance ID`},
		{name: "region that is no region", items: map[string]string{"placement/region": "../../evil"}, want: `region "../../evil" is not a region name`},
		{name: "no role", items: map[string]string{"iam/security-credentials/": ""}, want: "replacing the route"},
		{name: "EC2 refuses with a message of several lines", fail: "UnauthorizedOperation", msg: "no\nway\u202e", want: `"UnauthorizedOperation": "no\nway\u202e"`},
		{name: "EC2 answers what is no XML", fail: "X", msg: "\x1b]0;x\x07", want: `"operation error EC2: ReplaceRoute`},
	} {
		md := httptest.NewServer(instance(tc.items))
		ec2 := &fakeEC2{routes: map[string]string{}, fail: tc.fail, msg: tc.msg}
		api := httptest.NewServer(ec2)
		a := &AWS{Tables: []string{"rtb-12345678"}, Metadata: md.URL, Endpoint: api.URL}
		res, err := a.Point(context.Background(), []netip.Prefix{netip.MustParsePrefix("192.168.254.0/24")})
		if err == nil && len(res) == 1 {
			err = res[0].Err
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		md.Close()
		api.Close()
	}
	if _, err := (&AWS{Tables: []string{"rtb-xyz"}}).Point(context.Background(), nil); err == nil || !strings.Contains(err.Error(), `route table "rtb-xyz": want rtb-`) {
		t.Errorf("bad table ID: %v", err)
	}
}
