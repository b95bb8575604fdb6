package cloud

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/gatenet/gate/services/nodeconfig"
)

// Kind names a source of user-data and metadata.
type Kind string

// The sources Detect reports.
const (
	None         Kind = "none"
	NoCloud      Kind = "nocloud"
	DigitalOcean Kind = "digitalocean"
	AWS          Kind = "aws"
)

// MetadataURL is the link-local metadata service of DigitalOcean and AWS.
const MetadataURL = "http://169.254.169.254"

// Result is what Detect found. The source is untrusted: Detect returns
// only what passed its boundary checks (bound): an instance ID of
// printable ASCII, a host name that is a DNS name (else none), a region
// name (else none), public keys of one printable line each, NIC and DNS
// lists, keys and notes bounded in number and size, and notes and errors
// without control characters.
type Result struct {
	Kind       Kind
	Where      string // the device, directory or URL it was read from
	InstanceID string // changes when the machine is a new instance
	Hostname   string
	Region     string
	UserData   []byte // raw, as served; nil when there is none
	NICs       []NIC  // what the metadata says about the NICs
	DNS        []netip.Addr
	PublicKeys []string
	// NetworkConfig is NoCloud's network-config mapped onto Gate's
	// interfaces; nil when there is none.
	NetworkConfig map[string]nodeconfig.Interface
	Notes         []string      // what was ignored or odd, for the log
	Elapsed       time.Duration // how long detection took
	// Unavailable: a metadata service accepted the connection and then
	// failed to answer (5xx, 429, a timeout), so that Kind is None or the
	// error came half way: it may not be serving yet, and asking again
	// later may do better. Answers that will not change (a 404 from a
	// service Gate does not know, a document too large) leave it false.
	Unavailable bool
}

// NIC is one network interface as the metadata describes it. Custom
// images on DigitalOcean and every AWS instance get these addresses by
// DHCP too; they are hints, for status and for the firewall, not settings.
type NIC struct {
	MAC     string       // lower case, colon-separated
	Role    string       // DigitalOcean: "public" or "private"; AWS: "primary" or ""
	Address netip.Prefix // private address and prefix
	Gateway netip.Addr
	Public  netip.Addr // DigitalOcean: the public address is on the NIC; AWS: a 1:1 NAT address that is not
}

// MetadataLayer returns the facts of the metadata as the lowest
// per-instance layer: the hostname, and NoCloud's network-config. It is
// nil when there is nothing.
func (r *Result) MetadataLayer() *nodeconfig.Layer {
	c := &nodeconfig.Config{Interfaces: r.NetworkConfig}
	if r.Hostname != "" {
		// A host name the metadata gives but Gate cannot use must not make
		// the whole configuration invalid: leave it out.
		if (&nodeconfig.Config{Version: nodeconfig.Version, Hostname: r.Hostname}).Validate() == nil {
			c.Hostname = r.Hostname
		}
	}
	if c.Hostname == "" && len(c.Interfaces) == 0 {
		return nil
	}
	return nodeconfig.NewLayer(nodeconfig.SourceMetadata, fmt.Sprintf("metadata (%s)", r.Kind), c)
}

// ParseUserData parses the result's user-data (see the package function).
func (r *Result) ParseUserData() (*UserData, error) {
	return ParseUserData(fmt.Sprintf("user-data (%s)", r.Kind), r.UserData)
}

// Detector looks for the sources. Its zero value looks only at local
// sources (the kernel command line it is given, NoCloud volumes); set
// Metadata to probe the link-local metadata service too.
type Detector struct {
	// Metadata allows probing the metadata service. The node daemon on an
	// ordinary host must leave it false unless its operator asks.
	Metadata bool
	// MetadataURL replaces the metadata service's address (tests).
	MetadataURL string
	// ConnectTimeout bounds the TCP connect to the metadata service: on a
	// machine without one, nothing answers and this is what detection
	// costs. Default 300 ms.
	ConnectTimeout time.Duration
	// RequestTimeout bounds each request once connected. Default 3 s.
	RequestTimeout time.Duration
	// Client replaces the HTTP client (its timeouts then are the caller's).
	Client *http.Client
	// Cmdline is the kernel command line (the caller reads /proc/cmdline);
	// its ds=nocloud... parameter names a NoCloud seed.
	Cmdline string
	// SysBlock and DevDir are where block devices are listed and opened.
	// Defaults /sys/class/block and /dev; "-" skips the volume scan.
	SysBlock, DevDir string
	// Logf, if set, gets a line per step.
	Logf func(format string, args ...any)
}

// Detect finds the first source present, in this order: a NoCloud seed
// named on the kernel command line; a NoCloud volume (label cidata); then,
// if d.Metadata, the metadata service (DigitalOcean, then AWS). It returns
// Kind None when there is none. An error means a source was found but
// could not be read; the Result then says which.
func (d *Detector) Detect(ctx context.Context) (*Result, error) {
	start := time.Now()
	r, err := d.detect(ctx)
	if r == nil {
		r = &Result{Kind: None}
	}
	// Whatever the source, what it gave is checked here, once: typed,
	// bounded, and without control characters, before anything logs it.
	if berr := r.bound(); err == nil {
		err = berr
	}
	err = cleanErr(err)
	r.Elapsed = time.Since(start)
	d.logf("cloud: %s (%s) in %v", r.Kind, cmp.Or(r.Where, "nothing found"), r.Elapsed.Round(time.Millisecond))
	return r, err
}

func (d *Detector) detect(ctx context.Context) (*Result, error) {
	if ds, ok, err := parseDS(d.Cmdline); err != nil {
		return &Result{Kind: NoCloud, Where: "kernel command line"}, err
	} else if ok {
		return d.nocloudFromCmdline(ctx, ds)
	}
	if d.SysBlock != "-" {
		dev, err := findVolume(cmp.Or(d.SysBlock, "/sys/class/block"), cmp.Or(d.DevDir, "/dev"), "cidata")
		if err != nil {
			d.logf("cloud: looking for a cidata volume: %v", err)
		}
		if dev != nil {
			r, err := readSeed(dev, NoCloud, dev.Where())
			if err != nil {
				return r, err
			}
			return r, nil
		}
	}
	if !d.Metadata {
		return nil, nil
	}
	return d.probeMetadata(ctx)
}

// probeMetadata connects once with a short timeout; only if something
// listens does it ask who it is.
func (d *Detector) probeMetadata(ctx context.Context) (*Result, error) {
	base := cmp.Or(d.MetadataURL, MetadataURL)
	host, err := hostPort(base)
	if err != nil {
		return nil, err
	}
	dialer := net.Dialer{Timeout: d.connectTimeout()}
	conn, err := dialer.DialContext(ctx, "tcp", host)
	if err != nil {
		d.logf("cloud: no metadata service at %s: %v", host, err)
		return nil, nil
	}
	conn.Close()
	m := &metadataClient{base: base, http: d.client()}
	r, err := m.digitalOcean(ctx)
	if r == nil && err == nil {
		r, err = m.aws(ctx)
	}
	switch {
	case r != nil:
		r.Unavailable = err != nil && m.failed
		return r, err
	case err != nil:
		return nil, err
	case m.failed:
		return &Result{Kind: None, Where: base, Unavailable: true, Notes: []string{"a metadata service at " + base + " fails to answer (server errors or timeouts)"}}, nil
	}
	return &Result{Kind: None, Where: base, Notes: []string{"a metadata service answers at " + base + " but is neither DigitalOcean's nor AWS IMDSv2"}}, nil
}

func (d *Detector) connectTimeout() time.Duration {
	return cmp.Or(d.ConnectTimeout, 300*time.Millisecond)
}

func (d *Detector) client() *http.Client {
	if d.Client != nil {
		return d.Client
	}
	tr := &http.Transport{
		Proxy:                 nil, // never through a proxy: the service is link-local
		DialContext:           (&net.Dialer{Timeout: d.connectTimeout()}).DialContext,
		ResponseHeaderTimeout: cmp.Or(d.RequestTimeout, 3*time.Second),
		DisableKeepAlives:     true,
	}
	return &http.Client{Transport: tr, Timeout: 2 * cmp.Or(d.RequestTimeout, 3*time.Second),
		CheckRedirect: func(*http.Request, []*http.Request) error { return errors.New("redirects are not followed") }}
}

func (d *Detector) logf(format string, args ...any) {
	if d.Logf != nil {
		d.Logf(format, args...)
	}
}

func sortedKeys[M ~map[string]V, V any](m M) []string { return slices.Sorted(maps.Keys(m)) }
