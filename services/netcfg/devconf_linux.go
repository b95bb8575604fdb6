package netcfg

import (
	"encoding/binary"
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// ipv4DevconfPromoteSecondaries is IPV4_DEVCONF_PROMOTE_SECONDARIES from
// include/uapi/linux/ip.h (the index of
// net.ipv4.conf.<link>.promote_secondaries in IFLA_INET_CONF).
const ipv4DevconfPromoteSecondaries = 20

// promoteSecondaries sets net.ipv4.conf.<link>.promote_secondaries=1 on a
// Gate link, through rtnetlink so that it reaches the handle's namespace
// (/proc/sys would reach the caller's).
//
// Why: when the primary IPv4 address of a subnet is deleted, the kernel
// deletes the secondaries of that subnet with it unless this is set; and
// when that leaves the link with no IPv4 address, it flushes every IPv4
// route through the link, other people's included
// (https://docs.kernel.org/networking/ip-sysctl.html, promote_secondaries;
// fib_inetaddr_event in net/ipv4/fib_frontend.c). Add-before-delete walks
// into exactly that when an address moves within its subnet
// (.170/24 -> .171/24), so Sync turns promotion on before it deletes an
// IPv4 address.
func (h *Handle) promoteSecondaries(link netlink.Link) error {
	req := nl.NewNetlinkRequest(unix.RTM_SETLINK, unix.NLM_F_ACK)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: h.conf}
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(link.Attrs().Index)
	req.AddData(msg)

	val := make([]byte, 4)
	binary.NativeEndian.PutUint32(val, 1)
	conf := nl.NewRtAttr(unix.IFLA_INET_CONF, nil)
	conf.AddRtAttr(ipv4DevconfPromoteSecondaries, val)
	inet := nl.NewRtAttr(unix.AF_INET, nil)
	inet.AddChild(conf)
	spec := nl.NewRtAttr(unix.IFLA_AF_SPEC, nil)
	spec.AddChild(inet)
	req.AddData(spec)

	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		return fmt.Errorf("setting net.ipv4.conf.%s.promote_secondaries=1: %w", link.Attrs().Name, err)
	}
	return nil
}
