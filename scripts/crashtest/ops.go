package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"sort"
	"time"

	"github.com/gatenet/gate/services/control"
)

// op is one write the driver makes.
type op struct {
	kind      string // create, delete, route-add, route-del, token, join, allow, deny, set-ip, remove
	net       string // network name
	cidr      string
	auto      bool
	dest, via string
	note      string // token
	allow     bool   // token
	reusable  bool   // token
	node      string
	tokenNote string // join: the token used, if any
	addr      string // set-ip

	// The answer, for an acknowledged write.
	id      string // create: network ID; token: token ID
	gotAddr string // join, allow, deny, set-ip: the member's address
	gotSt   string // allow, deny, set-ip: the member's state
}

func (o op) String() string {
	s := o.kind + " " + o.net
	switch o.kind {
	case "route-add", "route-del":
		s += " " + o.dest
	case "token":
		s += " " + o.note
	case "join", "allow", "deny", "remove", "set-ip":
		s += " " + o.node
	}
	return s
}

// apply changes w as o does. An acknowledged write (acked) carries its
// answer; one whose outcome is unknown gets wildcards where the controller
// would have chosen a value.
func apply(w world, o op, acked bool) error {
	n := w[o.net]
	if o.kind != "create" && n == nil {
		return fmt.Errorf("%s: no network %s in the model", o, o.net)
	}
	val := func(v string) string {
		if acked {
			return v
		}
		return anyValue
	}
	switch o.kind {
	case "create":
		w[o.net] = &netState{ID: val(o.id), Name: o.net, CIDR: o.cidr, AutoAllow: o.auto,
			Routes: map[string]string{}, Members: map[string]memState{}, Tokens: map[string]tokState{}}
	case "delete":
		delete(w, o.net)
	case "route-add":
		n.Routes[o.dest] = o.via
	case "route-del":
		delete(n.Routes, o.dest)
	case "token":
		n.Tokens[o.note] = tokState{ID: val(o.id), Allow: o.allow, Reusable: o.reusable}
	case "join":
		st := control.StatePending
		var tok tokState
		if o.tokenNote != "" {
			tok = n.Tokens[o.tokenNote]
			tok.Uses++
			n.Tokens[o.tokenNote] = tok
		}
		if n.AutoAllow || tok.Allow {
			st = control.StateAllowed
		}
		addr := ""
		if st == control.StateAllowed {
			addr = val(o.gotAddr)
		}
		n.Members[o.node] = memState{State: st, Addr: addr}
	case "allow":
		m := n.Members[o.node]
		m.State = control.StateAllowed
		if m.Addr == "" {
			m.Addr = val(o.gotAddr)
		}
		n.Members[o.node] = m
	case "deny":
		m := n.Members[o.node]
		m.State = control.StateDenied
		n.Members[o.node] = m
	case "set-ip":
		m := n.Members[o.node]
		m.Addr = o.addr
		n.Members[o.node] = m
	case "remove":
		delete(n.Members, o.node)
	default:
		return fmt.Errorf("unknown op %q", o.kind)
	}
	return nil
}

// worker makes a stream of writes on the networks it owns (named
// "w<i>-..."), one at a time, until a write fails without an answer (the
// controller is gone) or ctx ends. Its model is exact for every
// acknowledged write; the write in flight when the controller died is kept
// apart as uncertain.
type worker struct {
	idx       int
	prefix    string
	admin     *control.Client
	addr, pin string
	rnd       *mrand.Rand
	counter   *counters

	model     world
	acked     []op
	uncertain *op
	refused   []string // writes answered with an error (none expected)
}

// pendingPerSource is the controller's cap on members waiting for
// approval from one source address (services/controller).
const pendingPerSource = 16

// counters hand out names and CIDRs that are never reused in a run.
type counters struct {
	next func() int
}

func (wk *worker) run(ctx context.Context) {
	for ctx.Err() == nil {
		o, ok := wk.pick()
		if !ok {
			continue
		}
		err := wk.do(ctx, &o)
		if err == nil {
			if err := apply(wk.model, o, true); err != nil {
				wk.refused = append(wk.refused, err.Error())
			}
			wk.acked = append(wk.acked, o)
			continue
		}
		var ae *control.APIError
		if errors.As(err, &ae) && ae.Status/100 == 4 {
			// A refusal changes nothing; the model says it should not happen.
			wk.refused = append(wk.refused, fmt.Sprintf("%s: %v", o, err))
			continue
		}
		// No answer, or a server error: it may or may not have been done.
		wk.uncertain = &o
		return
	}
}

func (wk *worker) live() []string {
	var ns []string
	for name := range wk.model {
		ns = append(ns, name)
	}
	sort.Strings(ns)
	return ns
}

// pick chooses the next write from what the model holds.
func (wk *worker) pick() (op, bool) {
	r := wk.rnd
	nets := wk.live()
	if len(nets) < 2 || r.IntN(100) < 6 {
		k := wk.counter.next()
		return op{kind: "create", net: fmt.Sprintf("%sn%d", wk.prefix, k),
			cidr: fmt.Sprintf("10.%d.%d.0/24", k>>8&255, k&255), auto: r.IntN(4) == 0}, true
	}
	name := nets[r.IntN(len(nets))]
	n := wk.model[name]
	base := netip.MustParsePrefix(n.CIDR).Addr().As4()
	members := sortedKeys(n.Members)
	pickMember := func(ok func(memState) bool) string {
		var c []string
		for _, m := range members {
			if ok(n.Members[m]) {
				c = append(c, m)
			}
		}
		if len(c) == 0 {
			return ""
		}
		return c[r.IntN(len(c))]
	}
	switch x := r.IntN(100); {
	case x < 4 && len(nets) > 2:
		return op{kind: "delete", net: name}, true
	case x < 16:
		k := wk.counter.next()
		v := base
		v[3] = 10
		// /28s of 172.16.0.0/12: 65,536 before one comes back.
		d := netip.AddrFrom4([4]byte{172, byte(16 + k>>12&15), byte(k >> 4), byte(k << 4)})
		return op{kind: "route-add", net: name, dest: netip.PrefixFrom(d, 28).String(), via: netip.AddrFrom4(v).String()}, true
	case x < 22:
		if len(n.Routes) == 0 {
			return op{}, false
		}
		ds := sortedKeys(n.Routes)
		return op{kind: "route-del", net: name, dest: ds[r.IntN(len(ds))]}, true
	case x < 32:
		return op{kind: "token", net: name, note: fmt.Sprintf("%st%d", wk.prefix, wk.counter.next()), allow: r.IntN(2) == 0, reusable: r.IntN(3) == 0}, true
	case x < 60:
		if len(n.Members) > 150 {
			return op{}, false
		}
		o := op{kind: "join", net: name}
		if r.IntN(2) == 0 {
			var usable []string
			for _, note := range sortedKeys(n.Tokens) {
				// A token made by a write whose answer was lost at a kill
				// exists, but its secret is unknown.
				if t := n.Tokens[note]; (t.Reusable || t.Uses == 0) && secrets.get(note) != "" {
					usable = append(usable, note)
				}
			}
			if len(usable) > 0 {
				o.tokenNote = usable[r.IntN(len(usable))]
			}
		}
		// The controller takes at most pendingPerSource members waiting
		// for approval from one address (all of these come from
		// 127.0.0.1): a join that would be one more is not a write the
		// model expects to be acknowledged.
		if !n.AutoAllow && (o.tokenNote == "" || !n.Tokens[o.tokenNote].Allow) {
			pending := 0
			for _, m := range n.Members {
				if m.State == control.StatePending {
					pending++
				}
			}
			if pending >= pendingPerSource {
				return op{}, false
			}
		}
		return o, true
	case x < 72:
		node := pickMember(func(m memState) bool { return m.State != control.StateAllowed })
		return op{kind: "allow", net: name, node: node}, node != ""
	case x < 78:
		node := pickMember(func(m memState) bool { return m.State == control.StateAllowed })
		return op{kind: "deny", net: name, node: node}, node != ""
	case x < 90:
		node := pickMember(func(m memState) bool { return m.State == control.StateAllowed })
		if node == "" {
			return op{}, false
		}
		used := map[string]bool{}
		for _, m := range n.Members {
			used[m.Addr] = true
		}
		for range 20 {
			a := base
			a[3] = byte(20 + r.IntN(230))
			if s := netip.AddrFrom4(a).String(); !used[s] {
				return op{kind: "set-ip", net: name, node: node, addr: s}, true
			}
		}
		return op{}, false
	default:
		node := pickMember(func(memState) bool { return true })
		return op{kind: "remove", net: name, node: node}, node != ""
	}
}

// do sends one write and fills in its answer.
func (wk *worker) do(ctx context.Context, o *op) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var n *netState
	if o.kind != "create" {
		n = wk.model[o.net]
	}
	memberAnswer := func(m control.Member, err error) error {
		if err != nil {
			return err
		}
		o.gotSt = m.State
		if len(m.Addresses) > 0 {
			o.gotAddr = m.Addresses[0].String()
		}
		return nil
	}
	switch o.kind {
	case "create":
		nw, err := wk.admin.CreateNetwork(ctx, control.CreateNetworkRequest{Name: o.net, CIDR: netip.MustParsePrefix(o.cidr), AutoAllow: o.auto})
		o.id = nw.ID
		return err
	case "delete":
		return wk.admin.DeleteNetwork(ctx, n.ID)
	case "route-add":
		_, err := wk.admin.AddRoute(ctx, n.ID, control.Route{Dest: netip.MustParsePrefix(o.dest), Via: netip.MustParseAddr(o.via)})
		return err
	case "route-del":
		_, err := wk.admin.DeleteRoute(ctx, n.ID, netip.MustParsePrefix(o.dest))
		return err
	case "token":
		t, err := wk.admin.CreateToken(ctx, n.ID, control.CreateTokenRequest{Allow: o.allow, Reusable: o.reusable, Note: o.note})
		if err != nil {
			return err
		}
		o.id = t.ID
		js, err := control.ParseJoinString(t.JoinString)
		if err != nil {
			return fmt.Errorf("token's join string: %w", err)
		}
		secrets.set(o.note, js.Token)
		return nil
	case "join":
		id, err := control.NewIdentity()
		if err != nil {
			return err
		}
		o.node = id.NodeID()
		mc, err := control.NewClient(wk.addr, wk.pin, &id, "")
		if err != nil {
			return err
		}
		defer mc.Close()
		var k [32]byte
		rand.Read(k[:])
		req := control.JoinRequest{PublicKey: base64.StdEncoding.EncodeToString(k[:]), Hostname: "crash-" + o.node[:6],
			Version: "crashtest", ListenPort: 51820, Endpoints: []netip.AddrPort{netip.MustParseAddrPort("198.18.0.1:51820")}}
		if o.tokenNote != "" {
			req.Token = secrets.get(o.tokenNote)
		}
		cfg, err := mc.Join(ctx, n.ID, req)
		if err != nil {
			return err
		}
		if len(cfg.Addresses) > 0 {
			o.gotAddr = cfg.Addresses[0].Addr().String()
		}
		return nil
	case "allow":
		return memberAnswer(wk.admin.AllowMember(ctx, n.ID, o.node))
	case "deny":
		return memberAnswer(wk.admin.DenyMember(ctx, n.ID, o.node))
	case "set-ip":
		return memberAnswer(wk.admin.SetMemberAddress(ctx, n.ID, o.node, netip.MustParseAddr(o.addr)))
	case "remove":
		return wk.admin.RemoveMember(ctx, n.ID, o.node)
	}
	return fmt.Errorf("unknown op %q", o.kind)
}

// check compares what the restarted controller holds of this worker's
// networks with the model: exactly the acknowledged writes, plus or minus
// the one in flight. It returns the differences of the closer variant.
func (wk *worker) check(got world) []string {
	d := diff(wk.model, got)
	if len(d) == 0 || wk.uncertain == nil {
		return d
	}
	alt := wk.model.clone()
	if err := apply(alt, *wk.uncertain, false); err != nil {
		return append(d, err.Error())
	}
	d2 := diff(alt, got)
	if len(d2) == 0 || len(d2) < len(d) {
		return d2
	}
	return d
}
