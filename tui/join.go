package tui

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/localapi"
)

// joinRequest turns what the operator typed into a join request, or an
// error that says what is wrong with it. A join string carries its
// controller; a bare network ID needs a controller the node already knows
// (the daemon checks that, and says so).
func joinRequest(input string) (localapi.JoinRequest, error) {
	s := strings.TrimSpace(input)
	if s == "" {
		return localapi.JoinRequest{}, errors.New("paste a join string (gate://...) or type a 16-digit network ID")
	}
	if strings.Contains(s, "://") {
		if _, err := control.ParseJoinString(s); err != nil {
			return localapi.JoinRequest{}, err
		}
		return localapi.JoinRequest{Join: s}, nil
	}
	id := control.NormalizeID(s)
	if err := control.CheckNetworkID(id); err != nil {
		return localapi.JoinRequest{}, fmt.Errorf("%v (or paste a join string gate://HOST:PORT/...)", err)
	}
	return localapi.JoinRequest{Join: id}, nil
}

// networkIDOf returns the network ID a join request is about.
func networkIDOf(r localapi.JoinRequest) string {
	if j, err := control.ParseJoinString(r.Join); err == nil {
		return j.NetworkID
	}
	return control.NormalizeID(r.Join)
}

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
