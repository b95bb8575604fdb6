package tui

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/nodeconfig"
)

// Fields of the NIC form, in tab order.
const (
	fieldMode = iota
	fieldAddress
	fieldGateway
	fieldDNS
	numFields
)

// nicForm is what the operator typed for one NIC.
type nicForm struct {
	name    string
	dhcp    bool
	address string
	gateway string
	dns     string
}

// formFor fills a form from a NIC's current state.
func formFor(n localapi.Interface) nicForm {
	f := nicForm{name: n.Name, dhcp: n.Mode != "static"}
	if len(n.Addresses) > 0 {
		f.address = n.Addresses[0].String()
	}
	if n.Gateway.IsValid() {
		f.gateway = n.Gateway.String()
	}
	var dns []string
	for _, a := range n.DNS {
		dns = append(dns, a.String())
	}
	f.dns = strings.Join(dns, ", ")
	return f
}

// request turns the form into the API request, or into errors keyed by
// field, each saying what is wrong; the console shows them next to the
// field as the operator types. others are the machine's other NICs: an
// address one of them has is a duplicate.
//
// What the configuration document also checks is checked by its own
// validators (services/nodeconfig), so the console says what the daemon
// would; the console adds its own limits (IPv4 only, /8 to /32, no
// address another NIC has).
func (f nicForm) request(others []localapi.Interface) (localapi.SetInterfaceRequest, map[int]string) {
	errs := map[int]string{}
	if err := nodeconfig.CheckInterfaceName(f.name); err != nil {
		errs[fieldMode] = err.Error()
	}
	if f.dhcp {
		if len(errs) > 0 {
			return localapi.SetInterfaceRequest{}, errs
		}
		return localapi.SetInterfaceRequest{DHCP: true}, nil
	}
	var req localapi.SetInterfaceRequest
	addr, err := netip.ParsePrefix(strings.TrimSpace(f.address))
	switch {
	case strings.TrimSpace(f.address) == "":
		errs[fieldAddress] = "required: address/prefix, e.g. 172.16.1.10/24"
	case err != nil:
		errs[fieldAddress] = "not an address/prefix like 172.16.1.10/24"
	case !addr.Addr().Is4():
		errs[fieldAddress] = "IPv4 only"
	case addr.Bits() < 8 || addr.Bits() > 32:
		errs[fieldAddress] = "prefix length must be 8 to 32"
	case nodeconfig.CheckHostPrefix(addr) != nil:
		errs[fieldAddress] = nodeconfig.CheckHostPrefix(addr).Error()
	default:
		req.Address = addr
		for _, o := range others {
			if o.Name == f.name {
				continue
			}
			for _, a := range o.Addresses {
				if a.Addr() == addr.Addr() {
					errs[fieldAddress] = fmt.Sprintf("%s already has %s", o.Name, addr.Addr())
				}
			}
		}
	}
	if g := strings.TrimSpace(f.gateway); g != "" {
		gw, err := netip.ParseAddr(g)
		switch {
		case err != nil || !gw.Is4():
			errs[fieldGateway] = "not an IPv4 address"
		case req.Address.IsValid() && !req.Address.Masked().Contains(gw):
			errs[fieldGateway] = "outside " + req.Address.Masked().String()
		case req.Address.IsValid() && gw == req.Address.Addr():
			errs[fieldGateway] = "that is this NIC's own address"
		default:
			req.Gateway = gw
		}
	}
	for _, s := range strings.FieldsFunc(f.dns, func(r rune) bool { return r == ',' || r == ' ' }) {
		a, err := nodeconfig.ParseNameserver(s)
		if err != nil {
			errs[fieldDNS] = err.Error()
			break
		}
		req.DNS = append(req.DNS, a)
	}
	if len(errs) > 0 {
		return localapi.SetInterfaceRequest{}, errs
	}
	return req, nil
}

// nicName renders a NIC's name for the form: as it is when it is an
// interface name, else quoted in ASCII, so that no escape sequence in it
// reaches the console.
func nicName(s string) string {
	if nodeconfig.CheckInterfaceName(s) == nil {
		return s
	}
	return strconv.QuoteToASCII(s)
}
