package cloud

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ds is the kernel command line's NoCloud parameter, as cloud-init
// documents it:
//
//	ds=nocloud[;key=val;...]      keys: s or seedfrom (/path/ or file:///path/),
//	ds=nocloud-net[;key=val;...]        h or local-hostname, i or instance-id
//
// With nocloud-net the seed is http:// or https:// and ends with '/'.
// Boot loaders need ';' escaped or the value quoted; both are accepted.
type ds struct {
	net        bool
	seed       string // a directory, or a URL ending in '/'
	hostname   string
	instanceID string
}

func parseDS(cmdline string) (ds, bool, error) {
	var d ds
	var value string
	found := false
	for _, f := range strings.Fields(cmdline) {
		f = strings.ReplaceAll(strings.ReplaceAll(f, `"`, ""), `\;`, ";")
		if v, ok := strings.CutPrefix(f, "ds="); ok {
			value, found = v, true // the last one wins, as the kernel's own parameters do
		}
	}
	if !found {
		return d, false, nil
	}
	parts := strings.Split(value, ";")
	switch parts[0] {
	case "nocloud":
	case "nocloud-net":
		d.net = true
	default:
		return d, false, nil // another datasource, for another tool
	}
	for _, kv := range parts[1:] {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "s", "seedfrom":
			d.seed = v
		case "h", "local-hostname":
			d.hostname = v
		case "i", "instance-id":
			d.instanceID = v
		case "":
		default:
			return d, true, fmt.Errorf("ds=%s: unknown key %q (want s, h, i)", value, k)
		}
	}
	switch {
	case d.seed == "":
	case d.net && (strings.HasPrefix(d.seed, "http://") || strings.HasPrefix(d.seed, "https://")):
		if !strings.HasSuffix(d.seed, "/") {
			return d, true, fmt.Errorf("ds=nocloud-net: seed URL %q must end with '/'", d.seed)
		}
	case !d.net && strings.HasPrefix(d.seed, "file://"):
		d.seed = strings.TrimPrefix(d.seed, "file://")
	case !d.net && strings.HasPrefix(d.seed, "/"):
	case d.net:
		return d, true, fmt.Errorf("ds=nocloud-net: seed %q must start with http:// or https://", d.seed)
	default:
		return d, true, fmt.Errorf("ds=nocloud: seed %q must start with / or file://", d.seed)
	}
	return d, true, nil
}

func (d *Detector) nocloudFromCmdline(ctx context.Context, p ds) (*Result, error) {
	var r *Result
	var err error
	switch {
	case p.seed != "" && p.net:
		client := d.Client
		if client == nil {
			// Not the metadata client: the seed server may be far away.
			client = &http.Client{Timeout: 30 * time.Second}
		}
		r, err = readSeed(&httpSeed{base: p.seed, ctx: ctx, client: client}, NoCloud, p.seed)
	case p.seed != "":
		r, err = readSeed(dirSeed(p.seed), NoCloud, p.seed)
	default:
		vol, verr := findVolume(cmp.Or(d.SysBlock, "/sys/class/block"), cmp.Or(d.DevDir, "/dev"), "cidata")
		switch {
		case vol != nil:
			r, err = readSeed(vol, NoCloud, vol.Where())
		case p.instanceID != "":
			r = &Result{Kind: NoCloud, Where: "kernel command line"}
		default:
			return &Result{Kind: NoCloud, Where: "kernel command line"},
				fmt.Errorf("ds=nocloud on the kernel command line, but no seed (s=) and no cidata volume: %v", verr)
		}
	}
	if r != nil {
		if p.hostname != "" {
			r.Hostname = p.hostname
		}
		if p.instanceID != "" {
			r.InstanceID = p.instanceID
		}
	}
	return r, err
}

// seed is where NoCloud's files are: a directory, a volume, a URL.
type seed interface {
	ReadFile(name string) ([]byte, error) // fs.ErrNotExist when absent
}

type dirSeed string

// ReadFile reads a regular file of the seed, at most maxSeedFile bytes:
// a seed directory can be on any volume, and its files any size.
func (d dirSeed) ReadFile(name string) ([]byte, error) {
	f, err := os.Open(filepath.Join(string(d), name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", f.Name())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSeedFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSeedFile {
		return nil, fmt.Errorf("%s is more than %d bytes", f.Name(), maxSeedFile)
	}
	return b, nil
}

// httpSeed is ds=nocloud-net's seed: the files under a URL. The caller
// must have brought the network up first.
type httpSeed struct {
	base   string
	ctx    context.Context
	client *http.Client
}

func (h *httpSeed) ReadFile(name string) ([]byte, error) {
	u, err := seedURL(h.base, name)
	if err != nil {
		return nil, err
	}
	m := &metadataClient{base: "", http: h.client}
	b, err := m.do(h.ctx, http.MethodGet, u, maxSeedFile, nil)
	if errors.Is(err, errNotFound) {
		return nil, fmt.Errorf("%s: %w", u, fs.ErrNotExist)
	}
	return b, err
}

// readSeed reads meta-data (required), user-data and network-config.
func readSeed(s seed, kind Kind, where string) (*Result, error) {
	r := &Result{Kind: kind, Where: where}
	md, err := s.ReadFile("meta-data")
	if err != nil {
		return r, fmt.Errorf("NoCloud seed %s: meta-data: %w", where, err)
	}
	var meta struct {
		InstanceID    string    `yaml:"instance-id"`
		LocalHostname string    `yaml:"local-hostname"`
		Hostname      string    `yaml:"hostname"`
		NetIfaces     string    `yaml:"network-interfaces"`
		PublicKeys    yaml.Node `yaml:"public-keys"`
	}
	if err := yaml.Unmarshal(md, &meta); err != nil {
		return r, fmt.Errorf("NoCloud seed %s: meta-data: %w", where, err)
	}
	r.InstanceID = meta.InstanceID
	if r.InstanceID == "" {
		r.InstanceID = "iid-dsnocloud" // cloud-init's default for NoCloud
		r.Notes = append(r.Notes, "meta-data has no instance-id; using "+r.InstanceID+" (user-data then applies once per state partition)")
	}
	r.Hostname = cmp.Or(meta.LocalHostname, meta.Hostname)
	publicKeys(&r.PublicKeys, &meta.PublicKeys)
	if meta.NetIfaces != "" {
		r.Notes = append(r.Notes, "meta-data network-interfaces (ifupdown) ignored: give a network-config file")
	}
	if r.UserData, err = s.ReadFile("user-data"); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return r, fmt.Errorf("NoCloud seed %s: user-data: %w", where, err)
		}
		r.Notes = append(r.Notes, "NoCloud seed has no user-data")
	}
	nc, err := s.ReadFile("network-config")
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return r, fmt.Errorf("NoCloud seed %s: network-config: %w", where, err)
	default:
		nics, notes, err := ParseNetworkConfig(nc)
		if err != nil {
			return r, fmt.Errorf("NoCloud seed %s: %w", where, err)
		}
		r.NetworkConfig = nics
		r.Notes = append(r.Notes, notes...)
	}
	return r, nil
}

// publicKeys reads meta-data's public-keys: a string, a list, or a map of
// name to key (EC2 style). It stops after one more than maxKeys: bound
// notes the rest as ignored.
func publicKeys(out *[]string, n *yaml.Node) {
	if len(*out) > maxKeys {
		return
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value != "" {
			*out = append(*out, n.Value)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if c.Kind == yaml.ScalarNode && len(*out) <= maxKeys {
				*out = append(*out, c.Value)
			}
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			publicKeys(out, n.Content[i])
		}
	}
}

func seedURL(base, name string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("seed URL %q: %w", base, err)
	}
	return u.JoinPath(name).String(), nil
}
