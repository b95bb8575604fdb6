package nics

// The link subscription and the DHCP clients' lifecycle.

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/gatenet/gate/services/dhcp"
)

// physical reports whether a link is one of the machine's NICs that Gate
// manages: not loopback, not Gate's own links, and Ethernet (a real
// device, or a veth in tests). With only, exactly the NICs it names.
func physical(l netlink.Link, only []string) bool {
	a := l.Attrs()
	if len(only) > 0 {
		return slices.Contains(only, a.Name)
	}
	if a.Flags&net.FlagLoopback != 0 || strings.HasPrefix(a.Name, "gate") {
		return false
	}
	switch l.Type() {
	case "device", "veth":
		return a.EncapType == "ether" || a.EncapType == ""
	}
	return false
}

// Watch follows the machine's links until ctx is done: a new NIC gets a
// DHCP client (or its static settings), a vanished one is dropped, a
// carrier change reaches the NIC's client. It returns at once; when ctx is
// done every client is stopped. Call it once.
func (m *Manager) Watch(ctx context.Context) error {
	m.mu.Lock()
	m.ctx = ctx
	m.mu.Unlock()
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	errs := make(chan error, 1)
	err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{
		ListExisting: true,
		ErrorCallback: func(err error) {
			select {
			case errs <- err:
			default:
			}
		},
	})
	if err != nil {
		return fmt.Errorf("watching links: %w", err)
	}
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				m.StopAll()
				return
			case err := <-errs:
				m.logf("watching links: %v", err)
			case u, ok := <-ch:
				if !ok {
					return
				}
				m.linkUpdate(ctx, u)
			}
		}
	}()
	return nil
}

func (m *Manager) linkUpdate(ctx context.Context, u netlink.LinkUpdate) {
	if u.Link == nil || !physical(u.Link, m.only) {
		return
	}
	a := u.Link.Attrs()
	m.mu.Lock()
	n := m.nics[a.Name]
	if u.Header.Type == unix.RTM_DELLINK {
		if n != nil {
			n.stop()
			delete(m.nics, a.Name)
			m.logf("interface %s gone", a.Name)
		}
		m.mu.Unlock()
		m.onChange()
		return
	}
	carrier := a.RawFlags&unix.IFF_LOWER_UP != 0
	if n == nil {
		n = &nic{name: a.Name, index: a.Index, mac: a.HardwareAddr.String(), up: carrier, admin: a.Flags&net.FlagUp != 0}
		m.nics[a.Name] = n
		m.configureLocked(ctx, n)
		m.mu.Unlock()
		m.onChange()
		return
	}
	n.admin = a.Flags&net.FlagUp != 0
	changed := carrier != n.up
	n.up = carrier
	client := n.client
	m.mu.Unlock()
	if changed {
		m.logf("interface %s: carrier %s", a.Name, map[bool]string{true: "up", false: "down"}[carrier])
		if client != nil {
			client.SetLink(carrier)
		}
		m.onChange()
	}
}

// configureLocked (re)starts n's DHCP client, or sets its static
// settings. Once ctx is done it starts no client.
func (m *Manager) configureLocked(ctx context.Context, n *nic) {
	n.stop()
	n.static = m.staticFor(n)
	if n.static != nil {
		m.logf("interface %s (%s): static %s via %s", n.name, n.mac, n.static.Address, orNone(n.static.Gateway))
		return
	}
	if ctx.Err() != nil {
		return
	}
	m.logf("interface %s (%s): DHCP", n.name, n.mac)
	cctx, cancel := context.WithCancel(ctx)
	var c *dhcp.Client
	c = dhcp.New(dhcp.Config{
		Iface:    n.name,
		Hostname: m.hostname,
		Logf:     m.logf,
		OnUpdate: func(u dhcp.Update) {
			m.mu.Lock()
			mine := m.nics[n.name] == n && n.client == c
			if mine {
				n.lease = u.Lease
			}
			m.mu.Unlock()
			if mine {
				m.onChange()
			}
		},
	})
	done := make(chan struct{})
	n.client, n.cancel, n.done = c, cancel, done
	go func() {
		defer close(done)
		// The NIC may still be down: the reconciler brings it up on its
		// first pass. Until then the client's sends fail and it retries.
		if err := c.Run(cctx); err != nil {
			m.logf("interface %s: %v", n.name, err)
		}
	}()
	if !n.up {
		c.SetLink(false)
	}
}

// StopAll stops every DHCP client and waits for them; their leases are
// forgotten (not released: the next start asks for the same addresses).
// Watch calls it when its context is done; an owner that must know no
// client outlives it (one about to return) calls it after cancelling that
// context.
func (m *Manager) StopAll() {
	m.mu.Lock()
	var dones []chan struct{}
	for _, n := range m.nics {
		if n.done != nil {
			dones = append(dones, n.done)
		}
		n.stop()
	}
	m.mu.Unlock()
	for _, d := range dones {
		<-d
	}
}
