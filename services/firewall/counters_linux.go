package firewall

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
)

// Counters reads back from the kernel what the rules of each overlay's
// Policy have matched since the table was last replaced, keyed by overlay
// interface: for each policy chain ("input", then "forward" on a
// gateway), one RuleCount a policy rule in rule order, then the default
// deny (Rule 0). A rule that became no nftables rule (its sources have
// no address of its destinations' family) is absent, as are overlays
// without a Policy; without Gate's table the map is empty.
//
// It reads only Gate's table: the base chains for their jumps, then each
// policy chain they jump to. Rules are mapped back to the policy by the
// number in their comment, never by nft's text. The chains are read one
// after the other, not at one instant: an Apply in between gives counts
// of the new table for some overlays and of the old for others.
func Counters(c *nftables.Conn) (map[string][]RuleCount, error) {
	t := table()
	out := map[string][]RuleCount{}
	for _, kind := range []string{chainInput, chainForward} {
		rules, err := c.GetRules(t, &nftables.Chain{Name: kind, Table: t})
		if err != nil {
			return nil, fmt.Errorf("firewall: reading chain %s: %w", kind, err)
		}
		seen := map[string]bool{}
		for _, r := range rules {
			for _, e := range r.Exprs {
				v, ok := e.(*expr.Verdict)
				if !ok || v.Kind != expr.VerdictJump || seen[v.Chain] {
					continue
				}
				seen[v.Chain] = true
				iface, ok := strings.CutPrefix(v.Chain, policyChain(kind, ""))
				if !ok {
					continue
				}
				counts, err := chainCounts(c, t, v.Chain, kind)
				if err != nil {
					return nil, err
				}
				out[iface] = append(out[iface], counts...)
			}
		}
	}
	return out, nil
}

// chainCounts sums the counters of policy chain name by the policy rule
// each of its rules came from.
func chainCounts(c *nftables.Conn, t *nftables.Table, name, kind string) ([]RuleCount, error) {
	rules, err := c.GetRules(t, &nftables.Chain{Name: name, Table: t})
	if err != nil {
		return nil, fmt.Errorf("firewall: reading chain %s: %w", name, err)
	}
	byRule := map[int]*RuleCount{}
	for _, r := range rules {
		text := udataComment(r.UserData)
		n, ok := parseRuleComment(text)
		if !ok {
			return nil, fmt.Errorf("firewall: chain %s: rule (handle %d) has comment %q, not the number of a policy rule", name, r.Handle, text)
		}
		var cnt *expr.Counter
		var v *expr.Verdict
		for _, e := range r.Exprs {
			switch e := e.(type) {
			case *expr.Counter:
				cnt = e
			case *expr.Verdict:
				v = e
			}
		}
		if cnt == nil || v == nil {
			return nil, fmt.Errorf("firewall: chain %s: rule (handle %d) of %q has no counter or no verdict", name, r.Handle, text)
		}
		rc := byRule[n]
		if rc == nil {
			rc = &RuleCount{Chain: kind, Rule: n, Allow: v.Kind == expr.VerdictAccept}
			byRule[n] = rc
		}
		rc.Packets += cnt.Packets
		rc.Bytes += cnt.Bytes
	}
	out := make([]RuleCount, 0, len(byRule))
	for _, rc := range byRule {
		out = append(out, *rc)
	}
	// Rule order, the default deny last. The input chain holds a rule's
	// Input and Forward parts apart; they count as one.
	rank := func(rc RuleCount) int {
		if rc.Rule == 0 {
			return math.MaxInt
		}
		return rc.Rule
	}
	slices.SortFunc(out, func(a, b RuleCount) int { return cmp.Compare(rank(a), rank(b)) })
	return out, nil
}

// udataComment is the comment in a rule's user data, "" if none. User
// data is TLVs, a type byte and a length byte before each value (libnftnl's
// udata); the comment is type NFTNL_UDATA_RULE_COMMENT, NUL-terminated.
// userdata.Get would panic on a length that runs past the end.
func udataComment(ud []byte) string {
	for len(ud) >= 2 {
		typ, n := ud[0], int(ud[1])
		if len(ud) < 2+n {
			break
		}
		if typ == byte(userdata.TypeComment) {
			return strings.TrimSuffix(string(ud[2:2+n]), "\x00")
		}
		ud = ud[2+n:]
	}
	return ""
}
