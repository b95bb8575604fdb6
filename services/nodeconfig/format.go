package nodeconfig

import (
	"bytes"
	"cmp"
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Format renders c as a YAML document that Parse reads back to the same
// Config, but for the controller's database password, which it never
// writes (RedactDB: "xxxxx" in its place): for the state partition,
// `gate config show`, and the console. Keys come in the documented order;
// zero values are left out.
func Format(c *Config) []byte {
	doc := mapping()
	add(doc, "version", scalar("!!int", strconv.Itoa(cmp.Or(c.Version, Version))))
	if c.Hostname != "" {
		add(doc, "hostname", str(c.Hostname))
	}
	if c.WAN != "" {
		add(doc, "wan", str(c.WAN))
	}
	if len(c.Interfaces) > 0 {
		ifs := mapping()
		for _, name := range c.InterfaceNames() {
			nic := c.Interfaces[name]
			m := mapping()
			m.Style = yaml.FlowStyle
			if nic.MAC != "" {
				add(m, "mac", str(nic.MAC))
			}
			if nic.DHCP {
				add(m, "dhcp", scalar("!!bool", "true"))
			}
			if nic.Address.IsValid() {
				add(m, "address", str(nic.Address.String()))
			}
			if nic.Gateway.IsValid() {
				add(m, "gateway", str(nic.Gateway.String()))
			}
			if len(nic.DNS) > 0 {
				add(m, "dns", list(nic.DNS))
			}
			add(ifs, name, m)
		}
		add(doc, "interfaces", ifs)
	}
	if c.Networks != nil {
		nets := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, n := range c.Networks {
			m := mapping()
			add(m, "join", str(n.Join))
			if n.Controller != "" {
				add(m, "controller", str(n.Controller))
			}
			if n.Token != "" {
				add(m, "token", str(n.Token))
			}
			if n.Address.IsValid() {
				add(m, "address", str(n.Address.String()))
			}
			if g := n.Gateway; g != nil {
				gm := mapping()
				add(gm, "serve", list(g.Serve))
				if g.LAN != "" {
					add(gm, "lan", str(g.LAN))
				}
				mq := mapping()
				mq.Style = yaml.FlowStyle
				add(mq, "to_lan", scalar("!!bool", strconv.FormatBool(g.MasqueradeLAN)))
				add(mq, "to_internet", scalar("!!bool", strconv.FormatBool(g.MasqueradeInternet)))
				add(gm, "masquerade", mq)
				if len(g.AWSRouteTables) > 0 {
					tl := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
					for _, t := range g.AWSRouteTables {
						tl.Content = append(tl.Content, str(t))
					}
					add(gm, "aws_route_tables", tl)
				}
				add(m, "gateway", gm)
			}
			nets.Content = append(nets.Content, m)
		}
		add(doc, "networks", nets)
	}
	if c.Controller != nil {
		m := mapping()
		m.Style = yaml.FlowStyle
		add(m, "listen", str(c.Controller.Listen))
		if c.Controller.Advertise != "" {
			add(m, "advertise", str(c.Controller.Advertise))
		}
		if c.Controller.DB != "" {
			add(m, "db", str(RedactDB(c.Controller.DB)))
		}
		if w := c.Controller.Web; w != nil {
			wm := mapping()
			wm.Style = yaml.FlowStyle
			add(wm, "listen", str(w.Listen))
			if w.Cert != "" {
				add(wm, "cert", str(w.Cert))
			}
			if w.Key != "" {
				add(wm, "key", str(w.Key))
			}
			add(m, "web", wm)
		}
		add(doc, "controller", m)
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		// Only nodes built above are encoded; failing is a bug here.
		panic(fmt.Sprintf("nodeconfig: formatting: %v", err))
	}
	enc.Close()
	return b.Bytes()
}

func mapping() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"} }

func scalar(tag, v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v} }

func str(s string) *yaml.Node { return scalar("!!str", s) }

func add(m *yaml.Node, key string, v *yaml.Node) { m.Content = append(m.Content, str(key), v) }

func list[T interface{ String() string }](vs []T) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
	for _, v := range vs {
		n.Content = append(n.Content, str(v.String()))
	}
	return n
}
