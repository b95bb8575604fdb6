package tui

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/nodeconfig"
)

// joinRequest turns what the operator typed into a join request, or an
// error that says what is wrong with it: the domain's reading of a join
// (nodeconfig.ParseJoin) and its validator (JoinRequest.Check), so that the
// form says what the local API would. A join string carries its
// controller; a bare network ID needs a controller the node already knows
// (the daemon checks that, and says so).
func joinRequest(input string) (localapi.JoinRequest, error) {
	s := strings.TrimSpace(input)
	if s == "" {
		return localapi.JoinRequest{}, errors.New("paste a join string (gate://...) or type a 16-digit network ID")
	}
	j, err := nodeconfig.ParseJoin(s, "", "")
	if err != nil {
		return localapi.JoinRequest{}, err
	}
	r := localapi.JoinRequest{Join: s}
	if j.Controller == "" {
		r.Join = j.NetworkID // a bare ID, as the daemon keeps it
	}
	return r, r.Check()
}

// networkIDOf returns the network ID a join request is about.
func networkIDOf(r localapi.JoinRequest) string { return r.NetworkID() }

// nextStep says, in plain words, what the operator should do about a
// network in its current state.
func nextStep(n localapi.Network, st localapi.Status) string {
	nodeID := st.NodeID
	switch n.Status {
	case control.StatusRequesting:
		return fmt.Sprintf("Waiting for approval. Ask an admin to run:\n  gate member allow %s %s\nand to check that gate member list shows this node's fingerprint:\n%s", n.ID, nodeID, st.Fingerprint)
	case control.StatusDenied:
		return fmt.Sprintf("Access denied: an admin must allow node %s in network %s", nodeID, n.ID)
	case control.StatusNotFound:
		return "The controller does not know this network: check the network ID, or leave it"
	case control.StatusOK:
		if len(n.Addresses) == 0 {
			return "Joined; no address assigned yet"
		}
		return fmt.Sprintf("Joined: %s on %s", n.Addresses[0], n.Interface)
	}
	return ""
}
