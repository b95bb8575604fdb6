package moddep

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A trimmed copy of the Debian 6.1 cloud kernel's modules.dep.
const debianDep = `kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/lib/libcrc32c.ko:
kernel/net/netfilter/nfnetlink.ko:
kernel/net/netfilter/nf_tables.ko: kernel/net/netfilter/nfnetlink.ko kernel/lib/libcrc32c.ko
kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko:
kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko:
kernel/net/netfilter/nf_conntrack.ko: kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/nf_nat.ko: kernel/net/netfilter/nf_conntrack.ko kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/nft_masq.ko: kernel/net/netfilter/nf_tables.ko kernel/net/netfilter/nfnetlink.ko kernel/net/netfilter/nf_nat.ko kernel/net/netfilter/nf_conntrack.ko kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/drivers/net/tun.ko:
`

func TestLoadOrder(t *testing.T) {
	g, err := Parse(strings.NewReader(debianDep))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		want []string
		out  []string
		err  string
	}{
		{
			name: "leaf",
			want: []string{"kernel/drivers/net/tun.ko"},
			out:  []string{"kernel/drivers/net/tun.ko"},
		},
		{
			name: "virtio_net after its closure, deepest first",
			want: []string{"kernel/drivers/net/virtio_net.ko"},
			out: []string{
				"kernel/drivers/virtio/virtio_ring.ko",
				"kernel/drivers/virtio/virtio.ko",
				"kernel/net/core/failover.ko",
				"kernel/drivers/net/net_failover.ko",
				"kernel/drivers/net/virtio_net.ko",
			},
		},
		{
			name: "shared dependencies once",
			want: []string{"kernel/net/netfilter/nft_masq.ko", "kernel/net/netfilter/nf_nat.ko"},
			out: []string{
				"kernel/lib/libcrc32c.ko",
				"kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko",
				"kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko",
				"kernel/net/netfilter/nf_conntrack.ko",
				"kernel/net/netfilter/nf_nat.ko",
				"kernel/net/netfilter/nfnetlink.ko",
				"kernel/net/netfilter/nf_tables.ko",
				"kernel/net/netfilter/nft_masq.ko",
			},
		},
		{name: "unknown", want: []string{"kernel/x.ko"}, err: "not in modules.dep"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := g.Order(tc.want)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.out, out); diff != "" {
				t.Errorf("order (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadOrderAllRespectsDeps(t *testing.T) {
	g, err := Parse(strings.NewReader(debianDep))
	if err != nil {
		t.Fatal(err)
	}
	out, err := g.Order(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(g.Files) {
		t.Fatalf("got %d modules, want all %d", len(out), len(g.Files))
	}
	pos := map[string]int{}
	for i, f := range out {
		pos[f] = i
	}
	for f, deps := range g.Deps {
		for _, d := range deps {
			if pos[d] > pos[f] {
				t.Errorf("%s loads before its dependency %s", f, d)
			}
		}
	}
}

func TestModulesDepErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, err string }{
		{"no colon", "kernel/a.ko\n", "want"},
		{"twice", "a.ko:\na.ko:\n", "twice"},
		{"missing dep", "a.ko: b.ko\n", "needs b.ko"},
		{"cycle", "a.ko: b.ko\nb.ko: a.ko\n", "cycle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Parse(strings.NewReader(tc.in))
			if err == nil {
				_, err = g.Order(nil)
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
		})
	}
}

func TestModuleName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/drivers/char/hw_random/virtio-rng.ko": "virtio_rng",
		"kernel/net/netfilter/nf_tables.ko":           "nf_tables",
		"kernel/fs/fat/vfat.ko.xz":                    "vfat",
		"kernel/drivers/block/xen-blkfront.ko.zst":    "xen_blkfront",
	} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFindAndWrite(t *testing.T) {
	g, err := Parse(strings.NewReader(debianDep))
	if err != nil {
		t.Fatal(err)
	}
	f, ok := g.Find("virtio-net")
	if !ok || f != "kernel/drivers/net/virtio_net.ko" {
		t.Fatalf("Find(virtio-net) = %q, %v", f, ok)
	}
	if _, ok := g.Find("nope"); ok {
		t.Fatal("Find(nope) found something")
	}
	order, err := g.Order([]string{f})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := g.Write(&b, order); err != nil {
		t.Fatal(err)
	}
	// The trimmed file parses back to the same closure.
	g2, err := Parse(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	order2, err := g2.Order(nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(order, order2); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}
