package policy

import (
	"encoding/json"
	"net/netip"
	"testing"
)

// FuzzParseRule: ParseRule never panics, its errors are printable ASCII,
// and a rule it gives writes out (String, JSON) to text that parses to
// the same rule and writes out the same again.
func FuzzParseRule(f *testing.F) {
	for _, s := range []string{
		"allow from any to any",
		"allow from tag:web to tag:db on tcp/5432",
		"deny from members to 172.16.0.0/16 on tcp/22 # no ssh",
		"allow\tfrom tag:Web , 10.99.0.7/32 to member:ABCDEF0123 on tcp/8000-8100,udp/53,icmp",
		"allow from fd00:16::/48,::/0 to 2001:db8::1 on any",
		"allow from any to any on tcp/022 #  # ",
		"allow form any to any",
		"allow from 10.0.0.5/8 to any",
		"allow from ::ffff:10.0.0.1 to any",
		"allow from any to any on tcp/100-80",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRule(s)
		if err != nil {
			if !printable(err.Error()) {
				t.Fatalf("ParseRule(%q): error not printable ASCII: %q", s, err)
			}
			return
		}
		if err := r.check(); err != nil {
			t.Fatalf("ParseRule(%q) gave a rule that fails check: %v", s, err)
		}
		text := r.String()
		again, err := ParseRule(text)
		if err != nil {
			t.Fatalf("ParseRule(%q) = %q, which does not parse: %v", s, text, err)
		}
		if !again.Equal(r) {
			t.Fatalf("ParseRule(%q) = %#v\nwritten out %q\nparses to %#v", s, r, text, again)
		}
		if again.String() != text {
			t.Fatalf("ParseRule(%q) written out %q, then %q", s, text, again.String())
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("ParseRule(%q) = %q, which JSON refuses: %v", s, text, err)
		}
		var back Rule
		if err := json.Unmarshal(b, &back); err != nil || !back.Equal(r) {
			t.Fatalf("ParseRule(%q) = %q, which comes back from JSON %s as %q, %v", s, text, b, back, err)
		}
	})
}

// FuzzRulesetCheck: Check never panics on what a member may receive, its
// errors are printable ASCII, and a Ruleset it passes can be evaluated,
// and encodes to JSON that decodes to a Ruleset it passes again.
func FuzzRulesetCheck(f *testing.F) {
	ix, err := NewIndex(testNet())
	if err != nil {
		f.Fatal(err)
	}
	p, err := ParsePolicy(appPolicy)
	if err != nil {
		f.Fatal(err)
	}
	for _, m := range testNet().Members {
		rs, err := Compile(p, ix, m.NodeID)
		if err != nil {
			f.Fatal(err)
		}
		b, err := json.Marshal(rs)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{}`, `null`, `{"input":null,"sets":null}`,
		`{"input":[{"rule":1,"allow":true,"from_sets":["any"],"to":["10.99.0.5/32"]}]}`,
		`{"input":[{"rule":1,"from":["10.0.0.0/8"],"to":["10.99.0.5/32","::/0"],"services":["tcp/1-65535","icmp","any"]}]}`,
		`{"forward":[{"rule":2,"from_sets":["tag:x"],"to":["0.0.0.0/0"]},{"rule":1,"from_sets":["tag:x"],"to":["0.0.0.0/0"]}],"sets":{"tag:x":[]}}`,
		`{"sets":{"member:0123456789":["10.0.0.1/32","10.0.0.0/31"]}}`,
		`{"input":[{"rule":1,"from":["10.0.0.1/8"],"to":["10.99.0.5/32"],"services":["tcp/0"]}]}`,
	} {
		f.Add([]byte(s))
	}
	probe := []netip.Addr{netip.MustParseAddr("10.99.0.1"), netip.MustParseAddr("10.99.0.5"), netip.MustParseAddr("fd00:16::1")}
	f.Fuzz(func(t *testing.T, data []byte) {
		var rs Ruleset
		if json.Unmarshal(data, &rs) != nil {
			return
		}
		if err := rs.Check(); err != nil {
			if !printable(err.Error()) {
				t.Fatalf("Check error not printable ASCII: %q", err)
			}
			return
		}
		for _, src := range probe {
			for _, dst := range probe {
				rs.evaluate(rs.Input, src, dst, TCP, 22)
				rs.evaluate(rs.Forward, src, dst, UDP, 53)
			}
		}
		for _, r := range append(rs.Input, rs.Forward...) {
			_ = r.String()
		}
		peers := []Member{{NodeID: "0123456789", Addresses: probe[:1], Tags: []string{"x"}}, {NodeID: "b000000001", Addresses: probe[1:]}}
		if err := rs.Fill(peers).CheckFilled(); err != nil {
			t.Fatalf("a Ruleset that passes Check, filled, fails CheckFilled: %v", err)
		}
		b, err := json.Marshal(rs)
		if err != nil {
			t.Fatalf("a Ruleset that passes Check does not encode: %v", err)
		}
		var back Ruleset
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s does not decode: %v", b, err)
		}
		if err := back.Check(); err != nil {
			t.Fatalf("%s, encoded from a Ruleset that passed Check, fails it: %v", b, err)
		}
	})
}
