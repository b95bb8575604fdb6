package policy

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// cmpNetip lets cmp compare the netip types (their fields are unexported).
var cmpNetip = cmp.Options{
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
}

func TestParseRule(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want: the canonical String
	}{
		{"allow from any to any", "allow from any to any"},
		{"allow from tag:web to tag:db on tcp/5432", "allow from tag:web to tag:db on tcp/5432"},
		{"deny from members to 172.16.0.0/16 on tcp/22", "deny from members to 172.16.0.0/16 on tcp/22"},
		{"  allow\tfrom  tag:Web ,tag:API,  10.99.0.7/32\tto member:ABCDEF0123 on tcp/80 , tcp/8000-8100,udp/53  ",
			"allow from tag:web,tag:api,10.99.0.7 to member:abcdef0123 on tcp/80,tcp/8000-8100,udp/53"},
		{"allow from tag:web,tag:web,tag:WEB to 10.0.0.5,10.0.0.5/32 on tcp,tcp", "allow from tag:web to 10.0.0.5 on tcp"},
		{"allow from any to any on any", "allow from any to any"},
		{"allow from any to any on tcp,any", "allow from any to any on tcp,any"},
		{"allow from any to any on tcp/80-80", "allow from any to any on tcp/80"},
		{"allow from any to any on icmp,udp,tcp/1-65535", "allow from any to any on icmp,udp,tcp/1-65535"},
		{"allow from fd00:16::/48 to FD00:16:0:1::/64", "allow from fd00:16::/48 to fd00:16:0:1::/64"},
		{"allow from 2001:db8::1 to ::/0", "allow from 2001:db8::1 to ::/0"},
		{"allow from 0.0.0.0/0 to 10.0.0.0/8", "allow from 0.0.0.0/0 to 10.0.0.0/8"},
		{"deny from any to tag:db # no one but the app   ", "deny from any to tag:db # no one but the app"},
		{"deny from any to tag:db #   spaced  out # and a hash ", "deny from any to tag:db # spaced  out # and a hash"},
		{"allow from any to any #", "allow from any to any"},
		{"allow from any to any on tcp/022", "allow from any to any on tcp/22"},
	} {
		r, err := ParseRule(tc.in)
		if err != nil {
			t.Errorf("ParseRule(%q): %v", tc.in, err)
			continue
		}
		if got := r.String(); got != tc.want {
			t.Errorf("ParseRule(%q).String() = %q, want %q", tc.in, got, tc.want)
		}
		again, err := ParseRule(r.String())
		if err != nil || !again.Equal(r) {
			t.Errorf("ParseRule(%q) again = %v, %v; want %v", r.String(), again, err, r)
		}
	}
}

func TestParseRuleStructure(t *testing.T) {
	got := MustParseRule("deny from tag:web,10.99.0.0/28 to member:abcdef0123 on tcp/22,udp/60000-61000,icmp # ops only")
	want := Rule{
		Action: Deny,
		From: []Selector{
			{Kind: KindTag, Name: "web"},
			{Kind: KindCIDR, Prefix: netip.MustParsePrefix("10.99.0.0/28")},
		},
		To:       []Selector{{Kind: KindMember, Name: "abcdef0123"}},
		Services: []Service{{TCP, 22, 22}, {UDP, 60000, 61000}, {Proto: ICMP}},
		Note:     "ops only",
	}
	if diff := cmp.Diff(want, got, cmpNetip); diff != "" {
		t.Errorf("rule (-want +got):\n%s", diff)
	}
	if r := MustParseRule("allow from any to any"); r.Services != nil {
		t.Errorf("no on: Services = %v, want nil", r.Services)
	}
}

func TestParseRuleErrors(t *testing.T) {
	long := "allow from any to any # " + strings.Repeat("x", 1001)
	many := "allow from " + strings.Repeat("tag:a,", 64) + "tag:b to any"
	for _, tc := range []struct {
		in, want string
	}{
		{"allow form any to any", `rule "allow form any to any": want "from" after "allow", got "form"`},
		{"permit from any to any", `rule "permit from any to any": want "allow" or "deny", got "permit"`},
		{"Allow from any to any", `rule "Allow from any to any": want "allow" or "deny", got "Allow" (keywords are lower case)`},
		{"allow From any to any", `rule "allow From any to any": want "from" after "allow", got "From" (keywords are lower case)`},
		{"", `rule "": want "allow" or "deny" first, got nothing`},
		{"# only a note", `rule "# only a note": want "allow" or "deny" first, got nothing`},
		{"allow", `rule "allow": want "from" after "allow", got the end of the rule`},
		{"allow from", `rule "allow from": want a selector after "from", got the end of the rule`},
		{"allow from to any", `rule "allow from to any": want a selector after "from", got "to"`},
		{"allow from any", `rule "allow from any": want "," or "to" after "any", got the end of the rule`},
		{"allow from tag:web tag:api to any", `rule "allow from tag:web tag:api to any": want "," or "to" after "tag:web", got "tag:api"`},
		{"allow from tag:web, to any", `rule "allow from tag:web, to any": want a selector after ",", got "to"`},
		{"allow from tag:web,,tag:api to any", `rule "allow from tag:web,,tag:api to any": want a selector after ",", got ","`},
		{"allow from ,any to any", `rule "allow from ,any to any": want a selector after "from", got ","`},
		{"allow from any to any tcp/22", `rule "allow from any to any tcp/22": want ",", "on" or the end of the rule after "any", got "tcp/22"`},
		{"allow from any to any on", `rule "allow from any to any on": want a service after "on", got the end of the rule`},
		{"allow from any to any on tcp/22 udp/53", `rule "allow from any to any on tcp/22 udp/53": want "," or the end of the rule after "tcp/22", got "udp/53"`},
		{"allow from any to any on tcp/22 on udp/53", `rule "allow from any to any on tcp/22 on udp/53": want "," or the end of the rule after "tcp/22", got "on"`},
		{"allow from 10.0.0.5/8 to any", `rule "allow from 10.0.0.5/8 to any": 10.0.0.5/8 is not a canonical prefix: write 10.0.0.0/8`},
		{"allow from any to fd00::1/64", `rule "allow from any to fd00::1/64": fd00::1/64 is not a canonical prefix: write fd00::/64`},
		{"allow from ::ffff:10.0.0.1 to any", `rule "allow from ::ffff:10.0.0.1 to any": ::ffff:10.0.0.1/128 is IPv4 written as IPv6: write it as IPv4`},
		{"allow from fe80::1%eth0 to any", `rule "allow from fe80::1%eth0 to any": "fe80::1%eth0" is not an address or a CIDR`},
		{"allow from 10.0.0.0/33 to any", `rule "allow from 10.0.0.0/33 to any": "10.0.0.0/33" is not a CIDR (want an address and a prefix length, such as 10.1.0.0/16)`},
		{"allow from 10.0.0 to any", `rule "allow from 10.0.0 to any": "10.0.0" is not an address or a CIDR`},
		{"allow from everyone to any", `rule "allow from everyone to any": want a selector (any, members, tag:NAME, member:NODEID, or an address or CIDR), got "everyone"`},
		{"allow from Any to any", `rule "allow from Any to any": want a selector, got "Any" (keywords are lower case: any)`},
		{"allow from Tag:web to any", `rule "allow from Tag:web to any": want a selector, got "Tag:web" (keywords are lower case: tag:web)`},
		{"allow from tag:we_b to any", `rule "allow from tag:we_b to any": "tag:we_b": a tag is 1 to 32 lower-case letters, digits and hyphens, starting with a letter and not ending with a hyphen`},
		{"allow from tag: to any", `rule "allow from tag: to any": "tag:": a tag is 1 to 32 lower-case letters, digits and hyphens, starting with a letter and not ending with a hyphen`},
		{"allow from member:abc to any", `rule "allow from member:abc to any": "member:abc": want member: and a node ID, 10 hex digits`},
		{"allow from any to any on tcp/0", `rule "allow from any to any on tcp/0": "tcp/0": want a port from 1 to 65535, got "0"`},
		{"allow from any to any on tcp/65536", `rule "allow from any to any on tcp/65536": "tcp/65536": want a port from 1 to 65535, got "65536"`},
		{"allow from any to any on tcp/", `rule "allow from any to any on tcp/": "tcp/": want a port from 1 to 65535, got ""`},
		{"allow from any to any on tcp/-5", `rule "allow from any to any on tcp/-5": "tcp/-5": want a port from 1 to 65535, got ""`},
		{"allow from any to any on tcp/+5", `rule "allow from any to any on tcp/+5": "tcp/+5": want a port from 1 to 65535, got "+5"`},
		{"allow from any to any on tcp/100-80", `rule "allow from any to any on tcp/100-80": "tcp/100-80": the range runs backwards: write tcp/80-100`},
		{"allow from any to any on udp/1-2-3", `rule "allow from any to any on udp/1-2-3": "udp/1-2-3": want a port from 1 to 65535, got "2-3"`},
		{"allow from any to any on icmp/8", `rule "allow from any to any on icmp/8": "icmp/8": only tcp and udp take ports`},
		{"allow from any to any on any/80", `rule "allow from any to any on any/80": "any/80": only tcp and udp take ports`},
		{"allow from any to any on http", `rule "allow from any to any on http": want a service (tcp/PORT, tcp/LO-HI, the same for udp, tcp, udp, icmp or any), got "http"`},
		{"allow from any to any on TCP/22", `rule "allow from any to any on TCP/22": want a service, got "TCP/22" (keywords are lower case: tcp/22)`},
		{"allow from any to any\nallow from any to any", `rule "allow from any to any\nallow from any to any": a rule is one line; this one has a line break at byte 21`},
		{"allow from any to any # caf\u00e9", `rule "allow from any to any # caf\u00e9": byte 27 is "\xc3": a rule is printable ASCII`},
		{"allow from any\x00 to any", `rule "allow from any\x00 to any": byte 14 is "\x00": a rule is printable ASCII`},
		{"allow from any to any # a\tb", `rule "allow from any to any # a\tb": the note holds a tab: a note is printable ASCII`},
		{"allow from any to any # " + strings.Repeat("n", 201), `rule "allow from any to any # nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"...: the note is 201 bytes; at most 200`},
		{long, `rule ` + strconv.Quote(long[:100]) + `...: 1025 bytes; a rule is at most 1024`},
		{many, `rule ` + strconv.Quote(many[:100]) + `...: more than 64 selectors in a list`},
	} {
		_, err := ParseRule(tc.in)
		got := "<nil>"
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("ParseRule(%q) error =\n\t%s\nwant\n\t%s", tc.in, got, tc.want)
		}
	}
}

func TestRuleJSON(t *testing.T) {
	p := Policy{
		MustParseRule("allow from tag:web to tag:db on tcp/5432"),
		MustParseRule("deny from members to 172.16.0.0/16 on tcp/22 # no ssh"),
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	const want = `["allow from tag:web to tag:db on tcp/5432","deny from members to 172.16.0.0/16 on tcp/22 # no ssh"]`
	if string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
	var back Policy
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, back, cmpNetip); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	err = json.Unmarshal([]byte(`["allow form any to any"]`), &back)
	if err == nil || err.Error() != `rule "allow form any to any": want "from" after "allow", got "form"` {
		t.Errorf("bad rule in JSON: error %v", err)
	}
	bad := Rule{Action: Allow, From: []Selector{{Kind: KindTag, Name: "Web"}}, To: []Selector{{Kind: KindAny}}}
	if _, err := json.Marshal(bad); err == nil {
		t.Errorf("marshalling %v: no error", bad)
	}
}

func TestParsePolicy(t *testing.T) {
	text := "# who may reach what\n\nallow from tag:web to tag:db on tcp/5432\r\n   # a comment\n\tdeny from any to any # the rest\n"
	p, err := ParsePolicy(text)
	if err != nil {
		t.Fatal(err)
	}
	const want = "allow from tag:web to tag:db on tcp/5432\ndeny from any to any # the rest\n"
	if got := p.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	_, err = ParsePolicy("allow from any to any\nallow form any to any\nallow from any to any on tcp/0\n")
	const wantErr = "line 2: rule \"allow form any to any\": want \"from\" after \"allow\", got \"form\"\n" +
		"line 3: rule \"allow from any to any on tcp/0\": \"tcp/0\": want a port from 1 to 65535, got \"0\""
	if err == nil || err.Error() != wantErr {
		t.Errorf("error =\n%v\nwant\n%s", err, wantErr)
	}
	_, err = ParsePolicy(strings.Repeat("allow from any to any\n", MaxRules+1))
	if err == nil || err.Error() != "line 1001: more than 1000 rules" {
		t.Errorf("too many rules: error %v", err)
	}
	if d := DefaultRules().String(); d != "allow from any to any\n" {
		t.Errorf("DefaultRules() = %q", d)
	}
}

func TestParseProto(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Proto
		ok   bool
	}{
		{"tcp", TCP, true}, {"udp", UDP, true}, {"icmp", ICMP, true}, {"icmpv6", ICMPv6, true},
		{"47", 47, true}, {"0", 0, true}, {"256", 0, false}, {"TCP", 0, false}, {"", 0, false},
	} {
		got, err := ParseProto(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseProto(%q) = %v, %v", tc.in, got, err)
		}
	}
}
