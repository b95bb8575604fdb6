// Command fakeaws plays the two AWS services a Gate gateway talks to when
// it takes over a route, inside the failover scenario's own namespaces
// (scripts/failover.sh), never anywhere else:
//
//   - -imds: an instance's metadata service, IMDSv2 only (cloudtest's
//     fake), with an instance ID and a role's credentials, on
//     169.254.169.254:80 in the gateway's namespace;
//   - -ec2 ADDR:PORT: EC2's query API for ReplaceRoute and CreateRoute,
//     in the VPC host's namespace, where it plays the VPC's route table:
//     a route to an instance becomes a kernel route via that instance's
//     address (-instances). Requests not signed with the role's key are
//     refused. Each change is printed as a line.
//
// It is not part of the gate binary.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/gatenet/gate/services/cloud/cloudtest"
)

const roleKey = "ASIAFAKEROLEKEY"

func main() {
	imds := flag.Bool("imds", false, "serve the instance metadata on 169.254.169.254:80")
	instance := flag.String("instance", "i-0000000000000000a", "with -imds: the instance ID")
	ec2 := flag.String("ec2", "", "serve EC2's query API on ADDR:PORT")
	instances := flag.String("instances", "", "with -ec2: ID=ADDR,... the instances' addresses")
	flag.Parse()
	switch {
	case *imds:
		exp := time.Now().Add(6 * time.Hour).UTC().Format(time.RFC3339)
		h := &cloudtest.IMDSv2{InstanceID: *instance, Items: map[string]string{
			"iam/security-credentials/":             "gate-gateway",
			"iam/security-credentials/gate-gateway": `{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"` + roleKey + `","SecretAccessKey":"secret","Token":"session","Expiration":"` + exp + `"}`,
		}}
		ln, err := net.Listen("tcp", "169.254.169.254:80")
		if err != nil {
			log.Fatal(err)
		}
		log.Fatal(http.Serve(ln, h))
	case *ec2 != "":
		f := &fakeEC2{addrs: map[string]string{}}
		for _, kv := range strings.Split(*instances, ",") {
			id, a, ok := strings.Cut(kv, "=")
			if !ok {
				log.Fatalf("-instances: %q is not ID=ADDR", kv)
			}
			f.addrs[id] = a
		}
		log.Fatal(http.ListenAndServe(*ec2, f))
	default:
		fmt.Fprintln(os.Stderr, "fakeaws: want -imds or -ec2 ADDR:PORT")
		os.Exit(2)
	}
}

type fakeEC2 struct {
	mu    sync.Mutex
	addrs map[string]string
}

func (f *fakeEC2) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(code, msg string) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>fake</RequestID></Response>`, code, msg)
	}
	if err := r.ParseForm(); err != nil {
		fail("MalformedQueryString", "bad form")
		return
	}
	if !strings.Contains(r.Header.Get("Authorization"), "Credential="+roleKey+"/") {
		fail("AuthFailure", "not signed with the role's key")
		return
	}
	action, table, dest, inst := r.Form.Get("Action"), r.Form.Get("RouteTableId"), r.Form.Get("DestinationCidrBlock"), r.Form.Get("InstanceId")
	if action != "ReplaceRoute" && action != "CreateRoute" {
		fail("InvalidAction", "only ReplaceRoute and CreateRoute here")
		return
	}
	a, ok := f.addrs[inst]
	p, err := netip.ParsePrefix(dest)
	if !ok || err != nil {
		fail("InvalidParameterValue", "unknown instance or destination")
		return
	}
	if out, err := exec.Command("ip", "route", "replace", p.String(), "via", a).CombinedOutput(); err != nil {
		fail("InternalError", strings.TrimSpace(string(out)))
		return
	}
	fmt.Printf("%s %s %s -> %s (%s)\n", action, table, dest, inst, a)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><%sResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>fake</requestId><return>true</return></%sResponse>`, action, action)
}
