package main

import (
	"slices"
	"testing"
)

func TestNodeIndex(t *testing.T) {
	ids := []string{"0000000000", "ffffffffff", "a1b2c3d4e5", "0000000010", "0000000020"}
	x, err := newNodeIndex(ids)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id   string
		want int
		ok   bool
	}{
		{"0000000000", 0, true},
		{"ffffffffff", 1, true},
		{"a1b2c3d4e5", 2, true},
		{"0000000010", 3, true},
		{"0000000020", 4, true},
		{"0000000030", 0, false},
		{"A1B2C3D4E5", 0, false},
		{"a1b2c3d4e", 0, false},
		{"a1b2c3d4e5f", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		if i, ok := x.lookup([]byte(tt.id)); ok != tt.ok || ok && i != tt.want {
			t.Errorf("lookup(%q) = %d, %t; want %d, %t", tt.id, i, ok, tt.want, tt.ok)
		}
	}
	for _, bad := range [][]string{{"0000000000", "0000000000"}, {"xyz"}} {
		if _, err := newNodeIndex(bad); err == nil {
			t.Errorf("newNodeIndex(%q) did not fail", bad)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		rev   uint64
		delta bool
		peers []string
	}{
		{"full", `{"status":"OK","revision":7,"routes":[],"peers":[{"node_id":"a1b2c3d4e5","hostname":"x"},{"node_id":"0000000010"}]}`,
			7, false, []string{"a1b2c3d4e5", "0000000010"}},
		{"delta", `{"status":"OK","revision":8,"delta":true,"since":7,"removed_peers":["ffffffffff"],"peers":[{"node_id":"0000000020"}]}`,
			8, true, []string{"0000000020"}},
		{"no peers key", `{"status":"REQUESTING_CONFIGURATION","revision":3}`, 3, false, nil},
		{"other order", `{"peers":[{"hostname":"x","node_id":"a1b2c3d4e5"}],"revision":9}`, 9, false, []string{"a1b2c3d4e5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h header
			heads := 0
			var peers []string
			err := parse([]byte(tt.body), func(hd header) { h = hd; heads++ }, func(node []byte) {
				if heads != 1 {
					t.Error("peer before head")
				}
				peers = append(peers, string(node))
			})
			if err != nil {
				t.Fatal(err)
			}
			if heads != 1 || h.Revision != tt.rev || h.Delta != tt.delta || !slices.Equal(peers, tt.peers) {
				t.Errorf("got %d heads, %+v, peers %q", heads, h, peers)
			}
		})
	}
}
