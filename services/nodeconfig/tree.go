package nodeconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// readTree reads a YAML or JSON document into a YAML node tree, the one
// representation the decoder walks. It returns nil for an empty document.
//
// JSON is read with encoding/json, not as YAML: JSON is not quite a subset
// of the YAML that go-yaml reads ("\/" is a valid JSON escape and a YAML
// error), and encoding/json gives the precise errors a JSON writer expects.
func readTree(data []byte) (*yaml.Node, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("document is %d bytes; the limit is %d", len(data), MaxSize)
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff")) // a byte order mark, as some editors write
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, nil
	}
	if trimmed[0] == '{' {
		return readJSON(data)
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document (---); give exactly one")
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, nil
		}
		return doc.Content[0], nil
	}
	return &doc, nil
}

// readJSON converts a JSON document into YAML nodes, with line numbers.
func readJSON(data []byte) (*yaml.Node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	lineAt := func(off int64) int { return 1 + bytes.Count(data[:min(int(off), len(data))], []byte("\n")) }
	var value func(depth int) (*yaml.Node, error)
	value = func(depth int) (*yaml.Node, error) {
		if depth > 64 {
			return nil, errors.New("JSON nested too deeply")
		}
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		n := &yaml.Node{Line: lineAt(off)}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				n.Kind, n.Tag = yaml.MappingNode, "!!map"
				for dec.More() {
					koff := dec.InputOffset()
					k, err := dec.Token()
					if err != nil {
						return nil, err
					}
					key, ok := k.(string)
					if !ok {
						return nil, fmt.Errorf("line %d: object key is not a string", lineAt(koff))
					}
					v, err := value(depth + 1)
					if err != nil {
						return nil, err
					}
					kn := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key, Line: lineAt(koff)}
					n.Content = append(n.Content, kn, v)
				}
			case '[':
				n.Kind, n.Tag = yaml.SequenceNode, "!!seq"
				for dec.More() {
					v, err := value(depth + 1)
					if err != nil {
						return nil, err
					}
					n.Content = append(n.Content, v)
				}
			}
			if _, err := dec.Token(); err != nil { // the closing delimiter
				return nil, err
			}
		case string:
			n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!str", t
		case json.Number:
			n.Kind, n.Value = yaml.ScalarNode, t.String()
			n.Tag = "!!float"
			if !strings.ContainsAny(n.Value, ".eE") {
				n.Tag = "!!int"
			}
		case bool:
			n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!bool", fmt.Sprint(t)
		case nil:
			n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!null", "null"
		}
		return n, nil
	}
	root, err := value(0)
	if err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("not valid JSON: data after the document")
	}
	return root, nil
}

// resolve follows aliases (bounded: an alias chain cannot loop in go-yaml,
// but stay safe).
func resolve(n *yaml.Node) *yaml.Node {
	if n == nil {
		return nil
	}
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	if n == nil || n.Kind == yaml.AliasNode {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node's type for error messages.
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!str":
		return show(n.Value)
	case "!!null":
		return "null"
	case "!!bool":
		return "boolean " + n.Value
	case "!!int", "!!float":
		return "number " + n.Value
	}
	return fmt.Sprintf("%s %s", tag(n.ShortTag()), show(n.Value))
}

// pair is one key and value of a mapping node.
type pair struct {
	key  string
	line int
	val  *yaml.Node
}

// pairs returns a mapping's entries in document order. It reports keys
// given twice and keys that are not strings; merge keys (<<) are refused.
func pairs(is *issues, path string, n *yaml.Node) []pair {
	var out []pair
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			is.errorf(path, n.Content[i].Line, "a key must be a plain string, got %s", describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			is.errorf(join(path, k.Value), k.Line, "YAML merge keys (<<) are not supported; write the keys out")
			continue
		}
		if seen[k.Value] {
			is.errorf(join(path, k.Value), k.Line, "given twice")
			continue
		}
		seen[k.Value] = true
		out = append(out, pair{key: k.Value, line: k.Line, val: v})
	}
	return out
}

// join appends a document key to a path: "a" + "b" = "a.b". A key that
// is not a plain identifier is quoted: "a" + "b.c" = `a."b.c"`.
func join(path, k string) string {
	if path == "" {
		return key(k)
	}
	return path + "." + key(k)
}

// tag renders a node's tag for a message: the document writes it (a %
// escape in a tag can be any byte), so it is quoted unless plain.
func tag(t string) string {
	if len(t) <= maxShown && PrintableASCII(t) && !strings.ContainsAny(t, " \"\\") {
		return t
	}
	return show(t)
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// Keys lists the top-level keys of a YAML document, in order, and its
// node for one of them. It is for envelopes such as #cloud-config, whose
// gate: key holds a document; see ParseEmbedded.
func topLevel(data []byte) (*yaml.Node, []pair, error) {
	root, err := readTree(data)
	if err != nil || root == nil {
		return nil, nil, err
	}
	root = resolve(root)
	if root.Kind != yaml.MappingNode {
		return root, nil, fmt.Errorf("want a mapping of keys at the top, got %s", describe(root))
	}
	var is issues
	ps := pairs(&is, "", root)
	if len(is.errs) > 0 {
		return root, nil, fmt.Errorf("%s", is.errs[0].String())
	}
	return root, slices.Clip(ps), nil
}
