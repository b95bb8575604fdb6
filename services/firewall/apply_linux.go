package firewall

import (
	"cmp"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Apply validates rs, compiles it and replaces Gate's table with the result
// in one netlink batch. The kernel applies the batch atomically: on any
// error the previous table stays exactly as it was. Applying the same
// Ruleset twice gives the same table.
//
// The batch goes to the network namespace c is bound to (c.NetNS; if none,
// the calling thread's), on a socket of its own sized for it (see
// batchSocket); c itself carries nothing, unless it is a test Conn
// (c.TestDial), which then gets the batch and one Flush.
func Apply(c *nftables.Conn, rs Ruleset) error {
	if err := rs.Validate(); err != nil {
		return err
	}
	if err := apply(c, compile(rs)); err != nil {
		if errors.Is(err, unix.EMSGSIZE) {
			return fmt.Errorf("firewall: replacing table inet %s: ruleset too large for one netlink batch: %w", TableName, err)
		}
		return fmt.Errorf("firewall: replacing table inet %s: %w", TableName, err)
	}
	return nil
}

// Remove deletes Gate's table if it exists; it is not an error if it does
// not. Nothing else is touched.
func Remove(c *nftables.Conn) error {
	// Adding the table first makes the delete succeed whether or not it
	// existed, without listing anything, in one atomic batch.
	t := table()
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("firewall: deleting table inet %s: %w", TableName, err)
	}
	return nil
}

func table() *nftables.Table {
	return &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
}

// apply sends a plan as one batch (see queue) and one Flush, on a socket
// of its own in c's namespace (c itself if it is a test Conn).
func apply(c *nftables.Conn, p plan) error {
	// Conn encodes as it queues and keeps the first encoding error until
	// Flush, which then sends nothing but also never forgets the error:
	// the Conn would be useless from then on. And AddSet can fail after the
	// table messages are queued, with no way to take them back. So encode
	// the whole batch first on a Conn whose "kernel" only acknowledges,
	// and send nothing unless that works. That run also measures the batch.
	var size, msgs int
	dry, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		for _, m := range req {
			size += nlmsgAlign(unix.NLMSG_HDRLEN + len(m.Data))
		}
		msgs += len(req)
		return req, nil
	}))
	if err != nil {
		return err
	}
	if err := queue(dry, p); err != nil {
		return fmt.Errorf("encoding: %w", err)
	}
	if err := dry.Flush(); err != nil {
		return fmt.Errorf("encoding: %w", err)
	}
	if size > maxBatchBytes {
		return fmt.Errorf("%d bytes in %d messages, at most %d bytes: %w", size, msgs, maxBatchBytes, unix.EMSGSIZE)
	}
	conn := c
	if c.TestDial == nil {
		if conn, err = nftables.New(nftables.WithNetNSFd(c.NetNS), nftables.WithSockOptions(batchSocket(size, msgs))); err != nil {
			return err
		}
	}
	if err := queue(conn, p); err != nil {
		return err // unreachable after the dry run
	}
	if err := conn.Flush(); err != nil {
		if errors.Is(err, unix.ENOBUFS) {
			// Only when the receive buffer could not be raised (no
			// CAP_NET_ADMIN): the kernel may have committed the batch.
			return fmt.Errorf("the kernel's acknowledgements overflowed the socket's receive buffer; the table may have been replaced: %w", err)
		}
		return err
	}
	return nil
}

// maxBatchBytes bounds a batch: the kernel takes it in one sendmsg, as one
// buffer, and holds its acknowledgements until the batch is done. A
// network's rules at the bounds of package policy (1000 rules, each with
// 64 sources) could ask for far more than any real one.
const maxBatchBytes = 16 << 20

// batchSocket readies the socket a batch of size bytes in msgs messages
// travels on. The batch is one sendmsg, which the send buffer must hold
// (net.core.wmem_default, 208 KiB, is a few hundred rules). The kernel
// acknowledges every message of it before the sender can read one, each
// acknowledgement taking about 1 KiB of the receive buffer even without
// the request echoed in it (NETLINK_CAP_ACK): with the default receive
// buffer, a batch of more than about 200 messages loses acknowledgements,
// and the sender gets ENOBUFS for a batch the kernel committed. Raising
// either buffer past net.core.[rw]mem_max takes CAP_NET_ADMIN (the
// *BUFFORCE options), which writing nftables takes as well; without it
// the buffers go as high as the limits let them.
func batchSocket(size, msgs int) nftables.SockOption {
	return func(c *netlink.Conn) error {
		if err := c.SetOption(netlink.CapAcknowledge, true); err != nil {
			return err
		}
		rc, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		err = rc.Control(func(fd uintptr) {
			serr = errors.Join(
				setBuffer(int(fd), unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, size+64<<10),
				setBuffer(int(fd), unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, msgs*1024+64<<10))
		})
		return cmp.Or(err, serr)
	}
}

// setBuffer raises a socket buffer to at least bytes (the kernel doubles
// what it is given), never below its default.
func setBuffer(fd, force, plain, bytes int) error {
	bytes = max(bytes, 256<<10)
	err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, bytes)
	if errors.Is(err, unix.EPERM) {
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, plain, bytes)
	}
	return err
}

func nlmsgAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// maxSetElems keeps a set's element list under netlink's 64 KiB attribute
// limit (an IPv6 interval element takes 36 bytes). The netlink encoder does
// not check that limit: it would wrap the 16-bit length and send a
// corrupt message.
const maxSetElems = 1500

// queue puts the batch on c: add table (so that the delete cannot fail
// with ENOENT), delete it with all it holds, add it again with its named
// sets, all its chains (so that a jump may name a chain listed after it),
// then each chain's rules, each preceded by the anonymous sets it looks up.
func queue(c *nftables.Conn, p plan) error {
	t := table()
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	for _, s := range p.sets {
		ns := &nftables.Set{
			Table:    t,
			ID:       s.id,
			Name:     s.name,
			Interval: true,
			KeyType:  s.keyType,
			Comment:  s.comment,
		}
		// A named set may take its elements in several messages, as nft
		// sends a large one.
		first := s.elems[:min(len(s.elems), maxSetElems)]
		if err := c.AddSet(ns, first); err != nil {
			return fmt.Errorf("set %s: %w", s.name, err)
		}
		for rest := s.elems[len(first):]; len(rest) > 0; {
			n := min(len(rest), maxSetElems)
			if err := c.SetAddElements(ns, rest[:n]); err != nil {
				return fmt.Errorf("set %s: %w", s.name, err)
			}
			rest = rest[n:]
		}
	}
	chains := make([]*nftables.Chain, len(p.chains))
	for i, ch := range p.chains {
		nch := &nftables.Chain{Name: ch.name, Table: t}
		if ch.hook != nil {
			policy := ch.policy
			nch.Type, nch.Hooknum, nch.Priority, nch.Policy = ch.typ, ch.hook, ch.prio, &policy
		}
		chains[i] = c.AddChain(nch)
	}
	for i, ch := range p.chains {
		for _, r := range ch.rules {
			for _, s := range r.sets {
				if len(s.elems) > maxSetElems {
					return fmt.Errorf("chain %s: rule %s: set too large: %d elements, at most %d fit in a netlink attribute",
						ch.name, brief(r.desc), len(s.elems), maxSetElems)
				}
				ns := &nftables.Set{
					Table:     t,
					ID:        s.id,
					Name:      anonSetName,
					Anonymous: true,
					Constant:  true,
					Interval:  s.interval,
					KeyType:   s.keyType,
				}
				if err := c.AddSet(ns, s.elems); err != nil {
					return fmt.Errorf("chain %s: rule %s: %w", ch.name, brief(r.desc), err)
				}
			}
			nr := &nftables.Rule{Table: t, Chain: chains[i], Exprs: r.exprs}
			if r.comment != "" {
				nr.UserData = userdata.AppendString(nil, userdata.TypeComment, r.comment)
			}
			c.AddRule(nr)
		}
	}
	return nil
}

// brief quotes a rule's description for an error, cut short: a rule may
// hold thousands of prefixes.
func brief(desc string) string {
	const max = 100
	if len(desc) > max {
		desc = desc[:max] + "..."
	}
	return strconv.Quote(desc)
}
