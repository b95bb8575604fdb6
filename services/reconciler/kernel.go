package reconciler

import (
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"github.com/gatenet/gate/services/firewall"
	"github.com/gatenet/gate/services/netcfg"
	"github.com/gatenet/gate/services/tunnel"
)

// Kernel is everything the reconciler writes, one small interface per kind
// of state. New fills the fields left nil with the real kernel: wireguard-go
// devices (services/tunnel), rtnetlink (services/netcfg), Gate's nftables
// table (services/firewall), the IPv4 forwarding switch and files. The
// package's tests give it a recording fake instead (fake_test.go).
type Kernel struct {
	Devices    Devices
	Links      Links
	Firewall   Firewall
	Forwarding Forwarding
	Files      Files
}

// Devices makes WireGuard devices (tunnel.New).
type Devices interface {
	// New creates link name with the given MTU and a WireGuard device on
	// it, without key or peers.
	New(name string, mtu int) (Device, error)
}

// Device is one WireGuard device (*tunnel.Device).
type Device interface {
	Name() string
	// Configure makes the device match cfg, writing only the delta; a
	// *tunnel.PeerError says which peers it left out, the rest applied.
	Configure(cfg tunnel.Config) error
	Status() (tunnel.Status, error)
	// Close removes the device and its link.
	Close() error
}

// Links are the kernel's links, addresses and routes (*netcfg.Handle).
type Links interface {
	// Sync makes one link match lc (netcfg.Handle.Sync). A link that does
	// not exist is an error that errors.As finds as a *LinkNotFoundError.
	Sync(lc netcfg.LinkConfig) error
	// RemoveRoutes deletes Gate's routes (netcfg.RouteProtocol) through
	// link name.
	RemoveRoutes(name string) error
	// LinkByDefaultRoute names the link of the IPv4 default route, or "".
	LinkByDefaultRoute() (string, error)
	// Observe reads a link's addresses and IPv4 routes, whoever made them
	// (netcfg.Handle.Observe).
	Observe(name string) (netcfg.LinkConfig, error)
	// WatchLinks calls changed after a link appears or goes, or changes
	// its up, carrier or MTU, until done is closed.
	WatchLinks(done <-chan struct{}, changed func()) error
	Close()
}

// Firewall is Gate's nftables table (services/firewall).
type Firewall interface {
	// Apply replaces the table with rs, atomically.
	Apply(rs firewall.Ruleset) error
	// Remove deletes the table; it is not an error if there is none.
	Remove() error
	// Counters reads what each policy rule matched, by overlay interface.
	Counters() (map[string][]firewall.RuleCount, error)
	Close()
}

// Forwarding is the IPv4 forwarding switch of the reconciler's namespace.
type Forwarding interface {
	Get() (bool, error)
	// Set turns it on or off and returns what it was; setting it to what
	// it is writes nothing.
	Set(on bool) (prev bool, err error)
	// Switch names the switch: this boot and this namespace
	// (netcfg.ForwardingSwitch).
	Switch() (string, error)
}

// Files are the files the reconciler writes: resolv.conf.
type Files interface {
	// WriteResolvConf replaces path with r's resolv.conf when its text
	// changes, and reports whether it wrote.
	WriteResolvConf(path string, r netcfg.Resolver) (bool, error)
}

// LinkNotFoundError is Links.Sync's error for a link that does not exist.
type LinkNotFoundError struct {
	Name string
	Err  error
}

func (e *LinkNotFoundError) Error() string { return e.Err.Error() }
func (e *LinkNotFoundError) Unwrap() error { return e.Err }

// WithKernel makes the reconciler write to k's fields instead of the
// real kernel; nil fields stay the real kernel's.
func WithKernel(k Kernel) Option { return func(r *Reconciler) { r.k = k } }

// WithDeviceOptions passes opts to every WireGuard device the real kernel
// makes (tunnel.WithBuffers).
func WithDeviceOptions(opts ...tunnel.Option) Option {
	return func(r *Reconciler) { r.devOpts = append(r.devOpts, opts...) }
}

// openKernel fills k's nil fields with the real kernel, in the current
// network namespace.
func openKernel(k Kernel, logf func(string, ...any), devOpts []tunnel.Option) (Kernel, error) {
	if k.Links == nil {
		h, err := netcfg.Open()
		if err != nil {
			return k, fmt.Errorf("netlink: %w", err)
		}
		k.Links = netcfgLinks{h, logf}
	}
	if k.Firewall == nil {
		c, err := nftables.New(nftables.AsLasting())
		if err != nil {
			k.Links.Close()
			return k, fmt.Errorf("nftables: %w", err)
		}
		k.Firewall = nftFirewall{c}
	}
	if k.Devices == nil {
		k.Devices = tunnelDevices{logf, devOpts}
	}
	if k.Forwarding == nil {
		k.Forwarding = sysctlForwarding{}
	}
	if k.Files == nil {
		k.Files = osFiles{}
	}
	return k, nil
}

type tunnelDevices struct {
	logf func(string, ...any)
	opts []tunnel.Option
}

func (t tunnelDevices) New(name string, mtu int) (Device, error) {
	dev, err := tunnel.New(name, mtu, t.logf, t.opts...)
	if err != nil {
		return nil, err
	}
	return dev, nil
}

type netcfgLinks struct {
	h    *netcfg.Handle
	logf func(string, ...any)
}

func (l netcfgLinks) Sync(lc netcfg.LinkConfig) error {
	err := l.h.Sync(lc)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return &LinkNotFoundError{Name: lc.Name, Err: err}
	}
	return err
}

func (l netcfgLinks) RemoveRoutes(name string) error      { return l.h.RemoveRoutes(name) }
func (l netcfgLinks) LinkByDefaultRoute() (string, error) { return l.h.LinkByDefaultRoute() }
func (l netcfgLinks) Observe(name string) (netcfg.LinkConfig, error) {
	return l.h.Observe(name)
}
func (l netcfgLinks) Close() { l.h.Close() }

func (l netcfgLinks) WatchLinks(done <-chan struct{}, changed func()) error {
	return l.h.WatchLinks(done, changed, l.logf)
}

type nftFirewall struct{ c *nftables.Conn }

func (f nftFirewall) Apply(rs firewall.Ruleset) error { return firewall.Apply(f.c, rs) }
func (f nftFirewall) Remove() error                   { return firewall.Remove(f.c) }
func (f nftFirewall) Counters() (map[string][]firewall.RuleCount, error) {
	return firewall.Counters(f.c)
}
func (f nftFirewall) Close() { f.c.CloseLasting() }

type sysctlForwarding struct{}

func (sysctlForwarding) Get() (bool, error)        { return netcfg.Forwarding() }
func (sysctlForwarding) Set(on bool) (bool, error) { return netcfg.SetForwarding(on) }
func (sysctlForwarding) Switch() (string, error)   { return netcfg.ForwardingSwitch() }

type osFiles struct{}

func (osFiles) WriteResolvConf(path string, r netcfg.Resolver) (bool, error) {
	return netcfg.WriteResolvConf(path, r)
}
