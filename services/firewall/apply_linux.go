package firewall

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Apply validates rs, compiles it and replaces Gate's table with the result
// in one netlink batch. The kernel applies the batch atomically: on any
// error the previous table stays exactly as it was. Applying the same
// Ruleset twice gives the same table.
//
// Apply flushes c itself; do not queue other messages on c before calling
// it (they would travel, and fail, with Gate's batch).
func Apply(c *nftables.Conn, rs Ruleset) error {
	if err := rs.Validate(); err != nil {
		return err
	}
	if err := apply(c, compile(rs)); err != nil {
		if errors.Is(err, unix.EMSGSIZE) {
			// The batch is one sendmsg, bounded by the socket's send
			// buffer (net.core.wmem_default, 208 KiB): thousands of
			// prefixes, far beyond a real network's routes.
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

// apply sends a plan as one batch (see queue) and one Flush.
func apply(c *nftables.Conn, p plan) error {
	// Conn encodes as it queues and keeps the first encoding error until
	// Flush, which then sends nothing but also never forgets the error:
	// the Conn would be useless from then on. And AddSet can fail after the
	// table messages are queued, with no way to take them back. So encode
	// the whole batch first on a Conn whose "kernel" only acknowledges,
	// and give c nothing unless that works.
	dry, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
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
	if err := queue(c, p); err != nil {
		return err // unreachable after the dry run
	}
	return c.Flush()
}

// maxSetElems keeps a set's element list under netlink's 64 KiB attribute
// limit (an IPv6 interval element takes 36 bytes). The netlink encoder does
// not check that limit: it would wrap the 16-bit length and send a
// corrupt message.
const maxSetElems = 1500

// queue puts the batch on c: add table (so that the delete cannot fail
// with ENOENT), delete it with all it holds, add it again with its chains,
// and each rule preceded by the anonymous sets it looks up.
func queue(c *nftables.Conn, p plan) error {
	t := table()
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	for _, ch := range p.chains {
		policy := ch.policy
		nch := c.AddChain(&nftables.Chain{
			Name:     ch.name,
			Table:    t,
			Type:     ch.typ,
			Hooknum:  ch.hook,
			Priority: ch.prio,
			Policy:   &policy,
		})
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
			c.AddRule(&nftables.Rule{Table: t, Chain: nch, Exprs: r.exprs})
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
