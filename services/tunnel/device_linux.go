package tunnel

import (
	"fmt"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
)

// Device is one WireGuard device on a kernel TUN link. Its methods are safe
// for concurrent use.
type Device struct {
	name string
	dev  *device.Device

	mu     sync.Mutex // serialises Configure's observe-plan-apply
	sets   int        // IpcSet calls made, for tests
	closed bool
}

// New creates the TUN link name with the given MTU and starts a wireguard-go
// device on it, with the standard UDP bind. The device is up (its goroutines
// and UDP socket run) but has no key and no peers until Configure; the
// kernel link stays down and without addresses until netcfg syncs it.
// logf receives wireguard-go's errors; nil discards them.
//
// wireguard-go follows the kernel link's state: when the link goes down it
// closes the UDP socket, when it comes back up it reopens it on the same
// port.
func New(name string, mtu int, logf func(format string, args ...any), opts ...Option) (*Device, error) {
	if logf == nil {
		logf = device.DiscardLogf
	}
	o := options{buffers: DefaultBuffers}
	for _, f := range opts {
		f(&o)
	}
	if err := CheckBuffers(o.buffers); err != nil {
		return nil, err
	}
	t, err := tun.CreateTUN(name, mtu)
	if err != nil {
		return nil, fmt.Errorf("creating TUN %s: %w", name, err)
	}
	prefix := "wireguard " + name + ": "
	logger := &device.Logger{
		// Verbose logs every handshake and keepalive; not worth a console.
		Verbosef: device.DiscardLogf,
		Errorf:   func(format string, args ...any) { logf(prefix+format, args...) },
	}
	d := &Device{name: name, dev: newDevice(t, logger, o.buffers)}
	if err := d.dev.Up(); err != nil {
		d.dev.Close()
		return nil, fmt.Errorf("starting WireGuard device %s: %w", name, err)
	}
	return d, nil
}

// DefaultBuffers bounds how many packet buffers each device may hand out at
// once (each is 64 KiB, the largest datagram a GSO/GRO batch can need, with
// its queue element). Upstream wireguard-go leaves the bound off on Linux,
// so under load the buffers pile up in its queues, to 300 MB - 1 GB per
// process, and are never given back (make bench: "upstream").
//
// The device always holds one batch (conn.IdealBatchSize, 128) in the TUN
// reader and one in each UDP receiver (IPv4, IPv6): 3 batches standing, or
// it stalls at start. Beyond those, everything a device holds drains
// (the third part of the patch: readers take replacement buffers only
// after handing a batch on; TestBulkBothWays deadlocked without it).
// One more batch in flight is enough to keep a 2-core
// machine busy; make bench measured 512 against 768, 1024, 2048 and
// unbounded (variants gate-b768 ...): the same or better throughput (the
// buffers stay hot in the cache), ~60 MB instead of ~400 MB per gateway
// under load, and a p99 ping of 1-2 ms instead of 10 (less queued in front
// of it). Packets staged for a peer still waiting for a handshake are
// dropped when buffers run short (the patch's second part), so a dead peer
// cannot hold the spare batch and stall the others.
const DefaultBuffers = 4 * conn.IdealBatchSize

// MinBuffers is the smallest bound a device can run with: one buffer more
// than the three batches it always holds.
const MinBuffers = 3*conn.IdealBatchSize + 1

// Option changes how New makes a device.
type Option func(*options)

type options struct {
	buffers int
}

// WithBuffers bounds the device's packet buffers: DefaultBuffers when not
// given, at least MinBuffers, or 0 for none (upstream's behaviour, to
// compare). CheckBuffers says whether n is one of those.
func WithBuffers(n int) Option { return func(o *options) { o.buffers = n } }

// CheckBuffers reports whether n can bound a device's packet buffers.
func CheckBuffers(n int) error {
	if n != 0 && n < MinBuffers {
		return fmt.Errorf("%d packet buffers per device: want 0 (unbounded) or at least %d (the device holds %d at all times)", n, MinBuffers, MinBuffers-1)
	}
	return nil
}

// newDeviceMu serialises the making of devices: the bound is a
// process-wide variable that Gate's patched wireguard-go reads while it
// makes one (see third_party/README.md), set here for each device and
// read by no one else.
var newDeviceMu sync.Mutex

// newDevice makes a wireguard-go device with the given bound.
func newDevice(t tun.Device, logger *device.Logger, buffers int) *device.Device {
	newDeviceMu.Lock()
	defer newDeviceMu.Unlock()
	device.PreallocatedBuffersPerPool = uint32(buffers)
	return device.NewDevice(t, conn.NewDefaultBind(), logger)
}

// Name returns the name of the kernel link.
func (d *Device) Name() string { return d.name }

// Configure makes the device match cfg: it reads the current state, plans
// the delta with Plan and applies it in one UAPI set. When nothing changed
// it sets nothing. A failed set may leave part of the delta applied; the
// next Configure observes that and finishes the job.
//
// Peers that fail check are left out and the rest is applied; the error is
// then a *PeerError naming them.
func (d *Device) Configure(cfg Config) error {
	cfg, dropped, err := check(cfg)
	if err != nil {
		return fmt.Errorf("configuring %s: %w", d.name, err)
	}
	if err := d.configure(cfg); err != nil {
		return err
	}
	if len(dropped) > 0 {
		return &PeerError{Device: d.name, Dropped: dropped}
	}
	return nil
}

func (d *Device) configure(cfg Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("configuring %s: device closed", d.name)
	}
	cur, err := d.status()
	if err != nil {
		return fmt.Errorf("configuring %s: %w", d.name, err)
	}
	set := Plan(cur, cfg)
	if set == "" {
		return nil
	}
	d.sets++
	if err := d.dev.IpcSet(set); err != nil {
		return fmt.Errorf("configuring %s: %w", d.name, err)
	}
	d.greet(cur, cfg)
	return nil
}

// greet starts a handshake with every peer that is new and has an
// endpoint. WireGuard otherwise waits for traffic, and when two members
// learn of each other at the same moment (an admin allows one), the first
// packet's handshake can reach the other side before it has the peer
// configured; its retry comes only after Rekey-Timeout (5 s). Greeting on
// both sides makes the later one's handshake the one that succeeds, within
// a round trip of the second configuration.
func (d *Device) greet(cur Status, cfg Config) {
	known := make(map[Key]bool, len(cur.Peers))
	for _, p := range cur.Peers {
		known[p.PublicKey] = true
	}
	for _, p := range cfg.Peers {
		if known[p.PublicKey] || !p.Endpoint.IsValid() {
			continue
		}
		if peer := d.dev.LookupPeer(device.NoisePublicKey(p.PublicKey)); peer != nil {
			peer.SendHandshakeInitiation(false)
		}
	}
}

// Status returns the device's key, port and peers as wireguard-go reports
// them.
func (d *Device) Status() (Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return Status{}, fmt.Errorf("status of %s: device closed", d.name)
	}
	st, err := d.status()
	if err != nil {
		return Status{}, fmt.Errorf("status of %s: %w", d.name, err)
	}
	return st, nil
}

func (d *Device) status() (Status, error) {
	now := time.Now()
	text, err := d.dev.IpcGet()
	if err != nil {
		return Status{}, fmt.Errorf("reading UAPI state: %w", err)
	}
	st, err := parseStatus(text, now)
	if err != nil {
		return Status{}, fmt.Errorf("parsing UAPI state: %w", err)
	}
	return st, nil
}

// Port returns the UDP port of the device (the kernel's pick when
// Config.ListenPort is 0), or 0 when the device is closed. wireguard-go
// keeps the port while the link is down and binds it again when it is up.
func (d *Device) Port() int {
	st, err := d.Status()
	if err != nil {
		return 0
	}
	return st.ListenPort
}

// Close stops the device, closes its UDP socket and the TUN, which removes
// the kernel link. Closing twice is not an error.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	d.dev.Close() // synchronous: the TUN fd is closed when it returns
	return nil
}
