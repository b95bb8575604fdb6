package nodeconfig

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Source is where a layer comes from. Sources are ordered: a later source
// overrides an earlier one.
type Source int

// The sources, lowest precedence first.
const (
	SourceDefaults Source = iota // image defaults, built into the image
	SourcePreseed                // a preseed file on the image's boot/state partition
	SourceMetadata               // cloud metadata: hostname, NoCloud network-config
	SourceUserData               // cloud user-data
	SourceLocal                  // the console or the CLI, stored on the state partition
	SourceCmdline                // the kernel command line, for recovery
)

func (s Source) String() string {
	switch s {
	case SourceDefaults:
		return "image defaults"
	case SourcePreseed:
		return "preseed"
	case SourceMetadata:
		return "cloud metadata"
	case SourceUserData:
		return "user-data"
	case SourceLocal:
		return "console/CLI"
	case SourceCmdline:
		return "kernel command line"
	}
	return fmt.Sprintf("source %d", int(s))
}

// Layer is one parsed source of configuration: the keys it sets, and
// those it removes. A layer alone need not be a valid document; the merge
// of all layers must be.
type Layer struct {
	Source   Source
	Name     string  // for messages: "user-data (DigitalOcean)", "/boot/gate/preseed.yaml"
	Config   Config  // what the layer sets (units not set are zero)
	Warnings []Issue // from parsing: unknown keys

	units []unit
	lines map[string]int
}

// ParseLayer parses a document (YAML or JSON, with version: 1) as one
// layer. A document with errors is refused whole: the error is an *Error
// that lists them all with their key paths and lines.
func ParseLayer(src Source, name string, data []byte) (*Layer, error) {
	root, err := readTree(data)
	if err != nil {
		return nil, &Error{Source: layerName(src, name), Errors: []Issue{{Message: escape(err.Error())}}}
	}
	return decodeLayer(src, name, root, true)
}

// ParseEmbedded parses the document held by the top-level key of a larger
// YAML document, such as the gate: key of a #cloud-config. It returns the
// layer (nil if key is absent) and the envelope's other top-level keys, in
// order, for the caller to note as ignored. The embedded document's version
// may be omitted: the envelope says what it is.
func ParseEmbedded(src Source, name string, data []byte, key string) (*Layer, []string, error) {
	_, ps, err := topLevel(data)
	if err != nil {
		return nil, nil, &Error{Source: layerName(src, name), Errors: []Issue{{Message: escape(err.Error())}}}
	}
	var others []string
	var l *Layer
	for _, p := range ps {
		if p.key != key {
			others = append(others, p.key)
			continue
		}
		if l, err = decodeLayer(src, name, p.val, false); err != nil {
			var e *Error
			if errors.As(err, &e) {
				prefix(e.Errors, key)
				prefix(e.Warnings, key)
			}
			return nil, others, err
		}
		prefix(l.Warnings, key)
	}
	return l, others, nil
}

// NewLayer makes a layer from a Config built by code (cloud metadata,
// image defaults): every non-zero unit of c is set.
func NewLayer(src Source, name string, c *Config) *Layer {
	l := &Layer{Source: src, Name: name, Config: *c.Clone(), lines: map[string]int{}}
	if c.Hostname != "" {
		l.units = append(l.units, unit{path: "hostname"})
	}
	if c.WAN != "" {
		l.units = append(l.units, unit{path: "wan"})
	}
	for _, n := range c.InterfaceNames() {
		l.units = append(l.units, nicUnit(n, false))
	}
	if c.Networks != nil {
		l.units = append(l.units, unit{path: "networks"})
	}
	if c.Controller != nil {
		l.units = append(l.units, unit{path: "controller"})
	}
	return l
}

func decodeLayer(src Source, name string, root *yaml.Node, needVersion bool) (*Layer, error) {
	d := &decoder{}
	d.document(root, needVersion)
	l := &Layer{Source: src, Name: name, Config: d.cfg, Warnings: d.is.warns, units: d.units, lines: d.lines}
	if err := d.is.err(layerName(src, name)); err != nil {
		return nil, err
	}
	return l, nil
}

func layerName(src Source, name string) string {
	if name == "" {
		return src.String()
	}
	return name
}

// Parse parses and validates one whole document. It returns the config,
// the warnings (unknown keys), and an *Error if anything is invalid.
func Parse(data []byte) (*Config, []Issue, error) {
	l, err := ParseLayer(SourceLocal, "", data)
	if err != nil {
		return nil, nil, err
	}
	l.Name = "document"
	e, err := Merge(l)
	if err != nil {
		return nil, l.Warnings, err
	}
	return e.Config, e.Warnings, nil
}

// Effective is the merged configuration and where each part came from.
type Effective struct {
	Config   *Config
	Warnings []Issue // of every layer, and of validation
	origins  map[string]*Layer
}

// Provenance says which layer set a unit of the effective configuration.
type Provenance struct {
	Path   string // "hostname", "interfaces.eth0", "networks", ... (keys quoted as in Issue.Path)
	Source Source
	Name   string
}

// Provenance lists where each unit of the effective configuration came
// from, sorted by path.
func (e *Effective) Provenance() []Provenance {
	var out []Provenance
	for _, p := range slices.Sorted(maps.Keys(e.origins)) {
		l := e.origins[p]
		out = append(out, Provenance{Path: p, Source: l.Source, Name: layerName(l.Source, l.Name)})
	}
	return out
}

// Origin says which layer set the value at a key path
// ("networks[0].gateway.serve"); ok is false if no layer did.
func (e *Effective) Origin(path string) (p Provenance, ok bool) {
	u, l := originOf(e.origins, path)
	if l == nil {
		return Provenance{}, false
	}
	return Provenance{Path: u, Source: l.Source, Name: layerName(l.Source, l.Name)}, true
}

// Merge merges layers by precedence (Source; layers of one source in the
// order given; nil layers are skipped) and validates the result. On error
// it returns an *Error whose issues name the layer and line each offending
// value was written in; the caller keeps its last good configuration.
func Merge(layers ...*Layer) (*Effective, error) {
	layers = slices.DeleteFunc(slices.Clone(layers), func(l *Layer) bool { return l == nil })
	slices.SortStableFunc(layers, func(a, b *Layer) int { return cmp.Compare(a.Source, b.Source) })
	out := &Config{Version: Version}
	origins := map[string]*Layer{}
	var warns []Issue
	for _, l := range layers {
		for _, w := range l.Warnings {
			if w.Origin == "" {
				w.Origin = layerName(l.Source, l.Name)
			}
			warns = append(warns, w)
		}
		for _, u := range l.units {
			apply(out, &l.Config, u)
			for p := range origins {
				if p == u.path || strings.HasPrefix(p, u.path+".") {
					delete(origins, p)
				}
			}
			if !u.remove {
				origins[u.path] = l
			}
		}
	}
	var is issues
	out.validate(&is)
	if l := origins["controller"]; l != nil && l.Source == SourceUserData && out.Controller != nil && DBPassword(out.Controller.DB) {
		// Only user-data's copy is out of the node's hands; the other
		// layers live on its own disks.
		is.warnf("controller.db", 0, "%s", dbPasswordWarning)
	}
	annotate := func(list []Issue) []Issue {
		for i, x := range list {
			if _, l := originOf(origins, x.Path); l != nil {
				list[i].Origin = layerName(l.Source, l.Name)
				list[i].Line = lineOf(l.lines, x.Path)
			}
		}
		return list
	}
	warns = append(warns, annotate(is.warns)...)
	if len(is.errs) > 0 {
		return nil, &Error{Source: "configuration", Errors: annotate(is.errs), Warnings: warns}
	}
	return &Effective{Config: out, Warnings: warns, origins: origins}, nil
}

// apply copies (or removes) one unit from a layer's config into out.
func apply(out, from *Config, u unit) {
	switch {
	case u.path == "hostname":
		out.Hostname = from.Hostname
	case u.path == "wan":
		out.WAN = from.WAN
	case u.path == "networks":
		out.Networks = from.Clone().Networks
	case u.path == "controller":
		out.Controller = from.Clone().Controller
	case u.path == "interfaces":
		out.Interfaces = nil
	case strings.HasPrefix(u.path, "interfaces."):
		name := u.nic
		if u.remove {
			delete(out.Interfaces, name)
			return
		}
		if out.Interfaces == nil {
			out.Interfaces = map[string]Interface{}
		}
		nic := from.Interfaces[name]
		nic.DNS = slices.Clone(nic.DNS)
		out.Interfaces[name] = nic
	}
	if u.remove {
		var zero Config
		apply(out, &zero, unit{path: u.path})
	}
}

// originOf finds the unit a key path belongs to: the longest unit that is
// the path or one of its ancestors (NIC names may contain dots).
func originOf(origins map[string]*Layer, path string) (string, *Layer) {
	best := ""
	for u := range origins {
		if (path == u || strings.HasPrefix(path, u+".") || strings.HasPrefix(path, u+"[")) && len(u) > len(best) {
			best = u
		}
	}
	if best == "" {
		return "", nil
	}
	return best, origins[best]
}

// lineOf finds the line of a path, or of its nearest ancestor.
func lineOf(lines map[string]int, path string) int {
	for p := path; p != ""; {
		if n, ok := lines[p]; ok {
			return n
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// prefix puts the envelope's key (gate:) in front of the issues' paths.
func prefix(list []Issue, k string) {
	for i := range list {
		if list[i].Path == "" {
			list[i].Path = key(k)
		} else {
			list[i].Path = key(k) + "." + list[i].Path
		}
	}
}
