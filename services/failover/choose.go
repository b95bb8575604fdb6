// Package failover keeps a route that several gateways serve on a gateway
// that works. Each gateway checks what lies behind it (its LAN link and
// the route's probes) and answers, over the tunnel, whether the route
// works from it; each member asks every gateway of such a route twice a
// second and sends through the most preferred one that answers and says
// it works, moving back to a more preferred one only once that one has
// worked for the route's failback hold.
//
// The decision is made where the traffic starts, from what the member
// sees, so it holds with the controller down and does not wait for a
// node to be declared offline anywhere: a gateway that stops answering
// (its process, its WAN, the whole machine) is out after DownAfter, and
// one whose LAN or probe target fails says so in its next answer. The
// answers need no signature of their own: each network's questions go
// out and its answers come in on a socket bound to its overlay
// interface, WireGuard delivers a packet there only from the peer whose
// allowed IPs hold its source, and a gateway's overlay address is in its
// own entry alone.
//
// Members decide alone, but alike: Choose is a pure function of the
// gateways' order, what was seen of each and the last choice, so members
// that see the same gateways choose the same one, which is what a cloud
// route table pointing at one gateway needs.
package failover

import (
	"net/netip"
	"time"
)

// Health is what a member has seen of one gateway of a route.
type Health struct {
	Up     bool      // it answered within DownAfter and says the route works from it
	Since  time.Time // when Up last changed (zero: never seen)
	Reason string    // why it is down ("" when up)
}

// Choice is the gateway a member sends a route's traffic through.
type Choice struct {
	Active netip.Addr
	Since  time.Time // when it became the active gateway
	Reason string    // why it is the one, for status
}

// Choose picks the gateway of a route: gws most preferred first; health
// says what was seen of each; prev is the last choice (zero: none yet);
// hold is how long a more preferred gateway must have been up before
// traffic moves back to it, and failback false means never.
//
//   - The active gateway stays while it is up, unless a more preferred
//     one has been up for hold (failback).
//   - When it is down, the most preferred gateway that is up takes over at
//     once.
//   - When none is up, the choice stays where it was (nothing better to
//     do), or is the most preferred gateway when there was none.
func Choose(gws []netip.Addr, health func(netip.Addr) Health, prev Choice, hold time.Duration, failback bool, now time.Time) Choice {
	if len(gws) == 0 {
		return Choice{}
	}
	cur := -1
	for i, g := range gws {
		if g == prev.Active {
			cur = i
		}
	}
	if cur >= 0 && health(gws[cur]).Up {
		if failback {
			for i := range cur {
				if h := health(gws[i]); h.Up && now.Sub(h.Since) >= hold {
					return Choice{Active: gws[i], Since: now, Reason: "preferred, back for " + hold.String()}
				}
			}
		}
		return prev
	}
	for i, g := range gws {
		if !health(g).Up {
			continue
		}
		why := "the most preferred that works"
		switch {
		case cur >= 0:
			why = prev.Active.String() + " is down"
			if r := health(prev.Active).Reason; r != "" {
				why += ": " + r
			}
		case i == 0:
			why = "preferred"
		}
		return Choice{Active: g, Since: now, Reason: why}
	}
	if cur >= 0 {
		out := prev
		out.Reason = "no gateway of the route works; staying"
		return out
	}
	return Choice{Active: gws[0], Since: now, Reason: "preferred; not heard from yet"}
}
