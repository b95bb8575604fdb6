package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/gatenet/gate/services/names"
)

// Rule is one rule of a policy. Its text form (String, ParseRule) is also
// its JSON form, a JSON string.
type Rule struct {
	Action   Action
	From, To []Selector
	// Services are the protocols and ports the rule matches; none means
	// every protocol and port ("on any").
	Services []Service
	Note     string // printable ASCII, at most MaxNoteBytes
}

// String renders r in its canonical form, one line:
//
//	ACTION from SELECTORS to SELECTORS [on SERVICES] [# NOTE]
func (r Rule) String() string { return string(r.appendText(nil)) }

func (r Rule) appendText(b []byte) []byte {
	b = append(b, r.Action.String()...)
	b = append(b, " from "...)
	b = appendList(b, r.From, Selector.appendText)
	b = append(b, " to "...)
	b = appendList(b, r.To, Selector.appendText)
	if len(r.Services) > 0 {
		b = append(b, " on "...)
		b = appendList(b, r.Services, Service.appendText)
	}
	if r.Note != "" {
		b = append(b, " # "...)
		b = append(b, r.Note...)
	}
	return b
}

// appendList appends items, separated by commas.
func appendList[T any](b []byte, items []T, appendItem func(T, []byte) []byte) []byte {
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendItem(it, b)
	}
	return b
}

// Equal says whether r and o are the same rule, note included.
func (r Rule) Equal(o Rule) bool {
	return r.Action == o.Action && r.Note == o.Note &&
		slices.Equal(r.From, o.From) && slices.Equal(r.To, o.To) && slices.Equal(r.Services, o.Services)
}

// MarshalText implements encoding.TextMarshaler: the rule's String. It
// refuses a rule that ParseRule would not give back.
func (r Rule) MarshalText() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	return []byte(r.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler, as ParseRule.
func (r *Rule) UnmarshalText(b []byte) error {
	v, err := ParseRule(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// MustParseRule is ParseRule for rules written in Go source (tests, the
// default policy): it panics on an error.
func MustParseRule(s string) Rule {
	r, err := ParseRule(s)
	if err != nil {
		panic(err)
	}
	return r
}

// ParseRule reads one rule, as the package doc describes. Its errors
// quote the rule and name the word that is wrong and what was wanted
// instead.
func ParseRule(s string) (Rule, error) {
	r, err := parseRule(s)
	if err != nil {
		return Rule{}, fmt.Errorf("rule %s: %w", quote(s), err)
	}
	return r, nil
}

func parseRule(s string) (Rule, error) {
	if len(s) > MaxRuleBytes {
		return Rule{}, fmt.Errorf("%d bytes; a rule is at most %d", len(s), MaxRuleBytes)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\n' || c == '\r':
			return Rule{}, fmt.Errorf("a rule is one line; this one has a line break at byte %d", i)
		case (c < ' ' || c > '~') && c != '\t':
			return Rule{}, fmt.Errorf("byte %d is %s: a rule is printable ASCII", i, quote(s[i:i+1]))
		}
	}
	body, note, _ := strings.Cut(s, "#")
	note = strings.Trim(note, " \t")
	if strings.Contains(note, "\t") {
		return Rule{}, fmt.Errorf("the note holds a tab: a note is printable ASCII")
	}
	if len(note) > MaxNoteBytes {
		return Rule{}, fmt.Errorf("the note is %d bytes; at most %d", len(note), MaxNoteBytes)
	}
	p := parser{toks: tokenize(body)}
	r := Rule{Note: note}
	switch w := p.next(); w {
	case "allow":
		r.Action = Allow
	case "deny":
		r.Action = Deny
	case "":
		return Rule{}, fmt.Errorf("want %q or %q first, got nothing", "allow", "deny")
	default:
		return Rule{}, p.want(`"allow" or "deny"`)
	}
	if p.next() != "from" {
		return Rule{}, p.want(`"from"`)
	}
	var err error
	if r.From, err = parseList(&p, "selectors", ParseSelector); err != nil {
		return Rule{}, err
	}
	if p.next() != "to" {
		return Rule{}, p.want(`"," or "to"`)
	}
	if r.To, err = parseList(&p, "selectors", ParseSelector); err != nil {
		return Rule{}, err
	}
	switch p.next() {
	case "":
		return r, nil
	case "on":
	default:
		return Rule{}, p.want(`",", "on" or the end of the rule`)
	}
	if r.Services, err = parseList(&p, "services", ParseService); err != nil {
		return Rule{}, err
	}
	if p.next() != "" {
		return Rule{}, p.want(`"," or the end of the rule`)
	}
	if len(r.Services) == 1 && r.Services[0] == (Service{Proto: AnyProto}) {
		r.Services = nil // "on any" is the same as no on at all
	}
	return r, nil
}

// tokenize splits a rule's body into words and commas.
func tokenize(s string) []string {
	var toks []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != ',' {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			toks = append(toks, s[start:i])
			start = -1
		}
		if i < len(s) && s[i] == ',' {
			toks = append(toks, ",")
		}
	}
	return toks
}

// parser walks a rule's words; next returns "" past the last.
type parser struct {
	toks []string
	pos  int
}

func (p *parser) next() string {
	p.pos++
	if p.pos > len(p.toks) {
		return ""
	}
	return p.toks[p.pos-1]
}

// back gives the last word back.
func (p *parser) back() { p.pos-- }

// want is the error for the word just read: what was wanted after the
// word before it, and what came instead.
func (p *parser) want(what string) error {
	after := ""
	if i := p.pos - 2; i >= 0 && i < len(p.toks) {
		after = " after " + quote(p.toks[i])
	}
	if p.pos > len(p.toks) {
		return fmt.Errorf("want %s%s, got the end of the rule", what, after)
	}
	got := p.toks[p.pos-1]
	hint := ""
	if lower := strings.ToLower(got); lower != got && isKeyword(lower) {
		hint = " (keywords are lower case)"
	}
	return fmt.Errorf("want %s%s, got %s%s", what, after, quote(got), hint)
}

func isKeyword(w string) bool {
	switch w {
	case "allow", "deny", "from", "to", "on":
		return true
	}
	return false
}

// parseList reads ITEM [, ITEM]..., dropping repeats, and leaves the word
// after it unread.
func parseList[T comparable](p *parser, what string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	n := 0
	for {
		w := p.next()
		if w == "" || w == "," || isKeyword(w) {
			return nil, p.want("a " + strings.TrimSuffix(what, "s"))
		}
		v, err := parse(w)
		if err != nil {
			return nil, err
		}
		if n++; n > MaxItems {
			return nil, fmt.Errorf("more than %d %s in a list", MaxItems, what)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
		if p.next() != "," {
			p.back()
			return out, nil
		}
	}
}

// check says what is wrong with a rule that ParseRule would not give:
// one built in Go, or one changed after parsing.
func (r Rule) check() error {
	if err := r.checkParts(); err != nil {
		return err
	}
	var buf [2 * MaxRuleBytes]byte
	if n := len(r.appendText(buf[:0])); n > MaxRuleBytes {
		return fmt.Errorf("%d bytes written out; a rule is at most %d", n, MaxRuleBytes)
	}
	return nil
}

// checkParts is check without the length of the rule written out, which
// costs most and matters only for its text: Compile runs it on every rule
// for every member.
func (r Rule) checkParts() error {
	if r.Action != Allow && r.Action != Deny {
		return fmt.Errorf("action %d: want allow or deny", r.Action)
	}
	for _, l := range []struct {
		what string
		sels []Selector
	}{{"from", r.From}, {"to", r.To}} {
		if len(l.sels) == 0 || len(l.sels) > MaxItems {
			return fmt.Errorf("%d selectors in %s: want 1 to %d", len(l.sels), l.what, MaxItems)
		}
		for _, s := range l.sels {
			if err := s.check(); err != nil {
				return err
			}
		}
	}
	if len(r.Services) > MaxItems {
		return fmt.Errorf("%d services: want at most %d", len(r.Services), MaxItems)
	}
	for _, s := range r.Services {
		if err := s.check(); err != nil {
			return err
		}
	}
	if len(r.Note) > MaxNoteBytes || !printable(r.Note) || strings.Trim(r.Note, " ") != r.Note {
		return fmt.Errorf("note %s: want printable ASCII, at most %d bytes, no spaces at its ends", quote(r.Note), MaxNoteBytes)
	}
	return nil
}

// check says what is wrong with a selector that ParseSelector would not
// give.
func (s Selector) check() error {
	ok := false
	switch s.Kind {
	case KindAny, KindMembers:
		ok = s.Name == "" && s.Prefix == (netip.Prefix{})
	case KindTag:
		t, valid := names.Tag(s.Name)
		ok = valid && t == s.Name && s.Prefix == (netip.Prefix{})
	case KindMember:
		ok = isNodeID(s.Name) && s.Prefix == (netip.Prefix{})
	case KindCIDR:
		if err := checkPrefix(s.Prefix); err != nil {
			return err
		}
		ok = s.Name == ""
	}
	if !ok {
		return fmt.Errorf("selector %s (kind %d) is malformed", quote(s.String()), s.Kind)
	}
	return nil
}

// printable says whether s is printable ASCII only.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
