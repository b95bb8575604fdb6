package policy

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// BenchmarkIndexPut is a join storm: the members of a 50,000-member hub
// and spoke network join one at a time, per Put (in address order, and in
// random order); and one member changes its tags in the full network.
func BenchmarkIndexPut(b *testing.B) {
	net, _, err := hubAndSpoke(50000)
	if err != nil {
		b.Fatal(err)
	}
	shuffled := slices.Clone(net.Members)
	rand.New(rand.NewPCG(7, 8)).Shuffle(len(shuffled), reflect.Swapper(shuffled))
	for _, order := range []struct {
		name    string
		members []Member
	}{{"join", net.Members}, {"join-shuffled", shuffled}} {
		b.Run(order.name, func(b *testing.B) {
			ix, i := emptyIndex(b, net), 0
			for b.Loop() {
				if i == len(order.members) {
					b.StopTimer()
					ix, i = emptyIndex(b, net), 0
					b.StartTimer()
				}
				if err := ix.Put(order.members[i]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
	b.Run("retag", func(b *testing.B) {
		ix, err := NewIndex(net)
		if err != nil {
			b.Fatal(err)
		}
		m := net.Members[1234]
		retagged := Member{NodeID: m.NodeID, Addresses: m.Addresses, Tags: []string{"spoke", "t1"}}
		for i := 0; b.Loop(); i++ {
			next := m
			if i%2 == 0 {
				next = retagged
			}
			if err := ix.Put(next); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("leave-rejoin", func(b *testing.B) {
		ix, err := NewIndex(net)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; b.Loop(); i++ {
			m := shuffled[i%len(shuffled)]
			ix.Remove(m.NodeID)
			if err := ix.Put(m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func emptyIndex(b *testing.B, n Network) *Index {
	ix, err := NewIndex(Network{CIDR: n.CIDR, Routes: n.Routes})
	if err != nil {
		b.Fatal(err)
	}
	return ix
}

// BenchmarkJoinStorm is what one join costs the policy on a controller
// that keeps one Index: Put the member, then compile its rules and list
// its peers, in a 50,000-member hub and spoke network filled in random
// order.
func BenchmarkJoinStorm(b *testing.B) {
	net, p, err := hubAndSpoke(50000)
	if err != nil {
		b.Fatal(err)
	}
	shuffled := slices.Clone(net.Members[2:])
	rand.New(rand.NewPCG(9, 10)).Shuffle(len(shuffled), reflect.Swapper(shuffled))
	hubs := Network{CIDR: net.CIDR, Routes: net.Routes, Members: net.Members[:2]}
	fill := func() *Index {
		ix, err := NewIndex(hubs)
		if err != nil {
			b.Fatal(err)
		}
		return ix
	}
	ix, i := fill(), 0
	for b.Loop() {
		if i == len(shuffled) {
			b.StopTimer()
			ix, i = fill(), 0
			b.StartTimer()
		}
		m := shuffled[i]
		i++
		if err := ix.Put(m); err != nil {
			b.Fatal(err)
		}
		if _, err := Compile(p, ix, m.NodeID); err != nil {
			b.Fatal(err)
		}
		if n := len(Peers(p, ix, m.NodeID)); n != 2 {
			b.Fatalf("a spoke has %d peers", n)
		}
	}
}

// BenchmarkAfterPuts asks the questions of BenchmarkPeers and
// BenchmarkCompile of an Index filled by Put in random order, with a
// tenth of the members gone and back.
func BenchmarkAfterPuts(b *testing.B) {
	net, p, err := hubAndSpoke(50000)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	ix := emptyIndex(b, net)
	for _, i := range rng.Perm(len(net.Members)) {
		if err := ix.Put(net.Members[i]); err != nil {
			b.Fatal(err)
		}
	}
	for _, i := range rng.Perm(len(net.Members))[:len(net.Members)/10] {
		ix.Remove(net.Members[i].NodeID)
	}
	for _, i := range rng.Perm(len(net.Members)) {
		if _, ok := ix.byID[net.Members[i].NodeID]; !ok {
			if err := ix.Put(net.Members[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
	spoke, gateway := net.Members[1234].NodeID, net.Members[0].NodeID
	for _, bc := range []struct {
		name string
		f    func() error
	}{
		{"Peers/spoke", func() error { return wantLen(Peers(p, ix, spoke), 2) }},
		{"Peers/gateway", func() error { return wantLen(Peers(p, ix, gateway), 50000-1) }},
		{"Compile/spoke", func() error { _, err := Compile(p, ix, spoke); return err }},
		{"Compile/gateway", func() error { _, err := Compile(p, ix, gateway); return err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if err := bc.f(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func wantLen(ids []string, n int) error {
	if len(ids) != n {
		return fmt.Errorf("%d peers, want %d: %s", len(ids), n, strings.Join(ids[:min(len(ids), 5)], " "))
	}
	return nil
}
