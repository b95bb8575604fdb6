// Package cloudtest is test support for code that talks to cloud metadata
// services: fakes of DigitalOcean's metadata service and of AWS's IMDSv2
// (the token flow enforced), and Serve, which puts one of them on
// 169.254.169.254:80 inside the test's own network namespace.
//
// It is for tests only, and it must never serve or send anything on
// 169.254.169.254 outside a namespace the test run created: Serve fails
// the test unless services/nstest put the process in one.
package cloudtest

import (
	"cmp"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gatenet/gate/services/nstest"
)

// Serve serves h on 169.254.169.254:80, inside the namespace that
// nstest.Main put this test process in (it fails the test anywhere else):
// the address goes on lo there, and comes off when the test ends.
func Serve(t testing.TB, h http.Handler) {
	t.Helper()
	nstest.Current(t) // never outside a namespace this test run created
	nstest.Run(t, "ip", "addr", "add", "169.254.169.254/32", "dev", "lo")
	ln, err := net.Listen("tcp", "169.254.169.254:80")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		nstest.Run(t, "ip", "addr", "del", "169.254.169.254/32", "dev", "lo")
	})
}

// DigitalOcean behaves like DigitalOcean's metadata service: the document
// of its API reference at /metadata/v1.json (an object, as droplets serve
// it), user-data at /metadata/v1/user-data, 404 elsewhere.
type DigitalOcean struct {
	UserData  string // "" = none (404)
	DropletID string // default 2756294
	Hostname  string // default sample-droplet
	// Document, if set, is served as /metadata/v1.json instead of the
	// sample (a hostile service, in tests of what Gate takes from it).
	Document string

	mu       sync.Mutex
	requests int
}

// Requests counts the requests served.
func (f *DigitalOcean) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// SetUserData replaces the user-data served from now on (an operator
// editing it between boots).
func (f *DigitalOcean) SetUserData(s string) {
	f.mu.Lock()
	f.UserData = s
	f.mu.Unlock()
}

func (f *DigitalOcean) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests++
	userData, id, host, doc := f.UserData, cmp.Or(f.DropletID, "2756294"), cmp.Or(f.Hostname, "sample-droplet"), f.Document
	f.mu.Unlock()
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case "/metadata/v1.json":
		w.Header().Set("Content-Type", "application/json")
		if doc != "" {
			w.Write([]byte(doc))
			return
		}
		hostJSON, _ := json.Marshal(host)
		w.Write([]byte(`{
  "droplet_id": ` + id + `,
  "hostname": ` + string(hostJSON) + `,
  "vendor_data": "#cloud-config\ndisable_root: false\n",
  "public_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample test@do"],
  "auth_key": "0123456789abcdef",
  "region": "nyc3",
  "interfaces": {
    "private": [{"ipv4": {"ip_address": "10.132.6.205", "netmask": "255.255.0.0", "gateway": "10.132.0.1"},
                 "mac": "04:01:57:d1:9e:02", "type": "private"}],
    "public": [{"ipv4": {"ip_address": "192.0.2.20", "netmask": "255.255.255.0", "gateway": "192.0.2.1"},
                "ipv6": {"ip_address": "2604:A880:0800:0000:1000:0000:0000:0000", "cidr": 64, "gateway": "2604:A880:0800:0000:0000:0000:0000:0001"},
                "anchor_ipv4": {"ip_address": "10.17.0.5", "netmask": "255.255.0.0", "gateway": "10.17.0.1"},
                "mac": "04:01:57:d1:9e:01", "type": "public"}]
  },
  "floating_ip": {"ipv4": {"active": false}},
  "dns": {"nameservers": ["2001:4860:4860::8844", "2001:4860:4860::8888", "8.8.8.8"]},
  "tags": null,
  "features": {"dhcp_enabled": true}
}`))
	case "/metadata/v1/user-data":
		if userData == "" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(userData))
	case "/metadata/v1/":
		w.Write([]byte("id\nhostname\nuser-data\nvendor-data\npublic-keys\nregion\ninterfaces/\ndns/\nfloating_ip/\ntags/\nfeatures/\n"))
	default:
		http.NotFound(w, r)
	}
}

// IMDSv2 behaves like AWS's instance metadata service with IMDSv2
// required: a token from PUT /latest/api/token (the TTL header is
// mandatory, 1-21600 s; a request with X-Forwarded-For is refused), and
// 401 for any GET without a valid token.
type IMDSv2 struct {
	UserData   string // "" = none (404)
	InstanceID string // default i-0123456789abcdef0
	// Items, if set, replace or add meta-data items, by path under
	// /latest/meta-data/ (a hostile service, in tests of what Gate takes
	// from it); an item set to "" is absent (404).
	Items map[string]string
	// Token, if set, is the session token handed out.
	Token string

	mu            sync.Mutex
	requests      int
	tokens        map[string]bool
	unauthorized  []string // paths asked without a valid token
	authorizedGET int
}

// SetUserData replaces the user-data served from now on.
func (f *IMDSv2) SetUserData(s string) {
	f.mu.Lock()
	f.UserData = s
	f.mu.Unlock()
}

// Unauthorized returns the paths asked for without a valid token.
func (f *IMDSv2) Unauthorized() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.unauthorized...)
}

// AuthorizedGETs counts the GETs that carried a valid token.
func (f *IMDSv2) AuthorizedGETs() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.authorizedGET
}

// Tokens counts the session tokens handed out.
func (f *IMDSv2) Tokens() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tokens)
}

// Requests counts the requests served, with a token or without.
func (f *IMDSv2) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

func (f *IMDSv2) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if r.URL.Path == "/latest/api/token" {
		if r.Method != http.MethodPut {
			http.Error(w, "", http.StatusMethodNotAllowed)
			return
		}
		if r.Header.Get("X-Forwarded-For") != "" {
			http.Error(w, "", http.StatusForbidden)
			return
		}
		ttl, err := strconv.Atoi(r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds"))
		if err != nil || ttl < 1 || ttl > 21600 {
			http.Error(w, "", http.StatusBadRequest)
			return
		}
		tok := cmp.Or(f.Token, "AQAEAFake"+strconv.Itoa(len(f.tokens))+"==")
		if f.tokens == nil {
			f.tokens = map[string]bool{}
		}
		f.tokens[tok] = true
		w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", strconv.Itoa(ttl))
		w.Write([]byte(tok))
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "", http.StatusMethodNotAllowed)
		return
	}
	if !f.tokens[r.Header.Get("X-aws-ec2-metadata-token")] {
		f.unauthorized = append(f.unauthorized, r.URL.Path)
		http.Error(w, "", http.StatusUnauthorized)
		return
	}
	f.authorizedGET++
	const m1, m2 = "0e:49:61:0f:c3:11", "0e:49:61:0f:c3:22"
	items := map[string]string{
		"instance-id":              cmp.Or(f.InstanceID, "i-0123456789abcdef0"),
		"placement/region":         "eu-north-1",
		"local-hostname":           "ip-172-16-1-10.eu-north-1.compute.internal",
		"local-ipv4":               "172.16.1.10",
		"public-ipv4":              "203.0.113.7",
		"mac":                      m1,
		"network/interfaces/macs/": m1 + "/\n" + m2 + "/",
		"network/interfaces/macs/" + m1 + "/local-ipv4s":            "172.16.1.10",
		"network/interfaces/macs/" + m1 + "/subnet-ipv4-cidr-block": "172.16.1.0/24",
		"network/interfaces/macs/" + m1 + "/public-ipv4s":           "203.0.113.7",
		"network/interfaces/macs/" + m2 + "/local-ipv4s":            "172.16.2.10\n172.16.2.11",
		"network/interfaces/macs/" + m2 + "/subnet-ipv4-cidr-block": "172.16.2.0/24",
		"public-keys/":              "0=gate-admin",
		"public-keys/0/openssh-key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample gate-admin",
	}
	for k, v := range f.Items {
		items[k] = v
	}
	if p, ok := strings.CutPrefix(r.URL.Path, "/latest/meta-data/"); ok {
		if v, ok := items[p]; ok && v != "" {
			w.Write([]byte(v))
			return
		}
	}
	if r.URL.Path == "/latest/user-data" && f.UserData != "" {
		w.Write([]byte(f.UserData))
		return
	}
	http.NotFound(w, r)
}

// JSON answers every request with v, to stand for "something else"
// listening on the metadata address.
func JSON(v any) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(v) })
}
