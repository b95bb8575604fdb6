package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/controller"
	"github.com/gatenet/gate/services/pglocal"
	"github.com/gatenet/gate/services/policy"
)

// ctl is the controller under test, or one of its replicas.
type ctl struct {
	dir, addr, pin, token string
	pid                   int
	stop                  func() error
}

// startController runs `gate controller` on a free loopback port (or, with
// inproc, a controller in this process) with its state in dir, for n
// members, on database db ("": SQLite in dir). The port is also the
// address it advertises. With first, the first replica's state directory,
// it is another replica: it gets copies of the first's key and admin
// token, as an operator would give it.
func startController(o options, dir string, n int, db, first string) (*ctl, error) {
	if first != "" {
		for _, f := range []string{"controller.key", "admin-token"} {
			b, err := os.ReadFile(filepath.Join(first, f))
			if err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
				return nil, err
			}
		}
	}
	// Every member connects from 127.0.0.1: the cap per source address
	// must hold them all, with room for the joins under way and the
	// admin's clients (-ctl-arg can still set others: the last wins).
	perSource, total := n+1024, max(n+1024, controller.DefaultMaxConns)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	logf, err := os.Create(filepath.Join(dir, "controller.log"))
	if err != nil {
		return nil, err
	}
	c := &ctl{dir: dir, addr: addr}
	if o.inproc {
		lg := log.New(logf, "", log.LstdFlags)
		s, err := controller.New(controller.Config{StateDir: dir, DB: db, Listen: addr, Advertise: addr, Logf: lg.Printf,
			MaxConns: total, MaxConnsPerSource: perSource})
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx) }()
		c.pid = os.Getpid()
		c.stop = func() error { cancel(); err := <-done; s.Close(); logf.Close(); return err }
	} else {
		args := []string{"controller", "--state", dir, "--listen", addr, "--advertise", addr,
			"--max-conns", strconv.Itoa(total), "--max-conns-per-source", strconv.Itoa(perSource)}
		if db != "" {
			args = append(args, "--db", db)
		}
		cmd := exec.Command(o.gate, append(args, o.ctlArgs...)...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.Env = append(os.Environ(), o.ctlEnv...)
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("starting %s controller: %w", o.gate, err)
		}
		c.pid = cmd.Process.Pid
		stopped := started(func() { cmd.Process.Kill() })
		c.stop = func() error {
			cmd.Process.Signal(syscall.SIGTERM)
			err := cmd.Wait()
			stopped()
			logf.Close()
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = waitFor(ctx, 30*time.Second, func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "controller.url"))
		if err != nil {
			return false
		}
		js, err := control.ParseControllerAddress(strings.TrimSpace(string(b)))
		if err != nil {
			return false
		}
		tok, err := os.ReadFile(filepath.Join(dir, "admin-token"))
		if err != nil {
			return false
		}
		c.pin, c.token = js.Pin, strings.TrimSpace(string(tok))
		admin, err := control.NewClient(addr, c.pin, nil, c.token)
		if err != nil {
			return false
		}
		defer admin.Close()
		_, err = admin.Networks(ctx)
		return err == nil
	})
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("controller did not come up (see %s): %w", filepath.Join(dir, "controller.log"), err)
	}
	return c, nil
}

// status reads a VmRSS-like field of /proc/PID/status, in kB.
func status(pid int, field string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func run(n int, o options) (*result, error) {
	dir := o.workdir
	if dir == "" {
		d, err := os.MkdirTemp("", "ctlbench")
		if err != nil {
			return nil, err
		}
		stopped := started(func() { os.RemoveAll(d) })
		defer func() { os.RemoveAll(d); stopped() }()
		dir = d
	}
	dir = filepath.Join(dir, fmt.Sprintf("n%d", n))
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	r := &result{N: n, Mode: "delta", Database: o.db, Replicas: o.replicas, Concurrency: o.concurrency, LoadStart: loadavg()}
	if !o.delta {
		r.Mode = "full"
	}
	r.RSSMiB.InProcess = o.inproc
	r.ControllerEnv = o.ctlEnv
	r.ControllerArg = o.ctlArgs
	var db string
	dbCPU := func() float64 { return 0 }
	if o.db == "postgres" {
		log.Printf("N=%d: starting PostgreSQL", n)
		// Each replica's pool (at most 16 connections) and its
		// notifications' connection, with room for the admin's.
		pg, err := pglocal.Start(pglocal.Config{Durable: true, MaxConnections: o.replicas*(ctlPGConns+4) + 10, Settings: o.pgSettings})
		if err != nil {
			return nil, err
		}
		stopped := started(pg.Stop)
		defer func() { pg.Stop(); stopped() }()
		if db, err = pg.CreateDB("gate"); err != nil {
			return nil, err
		}
		r.Postgres = &pgInfo{Version: pg.Version(), Settings: pg.Settings()}
		dbCPU = func() float64 { return treeCPU(pg.Pid()) }
	}
	log.Printf("N=%d (%s, %s): starting the controller", n, r.Mode, dbLabel(*r))
	cs := make([]*ctl, o.replicas)
	for i := range cs {
		cdir, first := dir, ""
		if o.replicas > 1 {
			cdir = filepath.Join(dir, fmt.Sprintf("replica%d", i+1))
			if err := os.Mkdir(cdir, 0o700); err != nil {
				return nil, err
			}
			if i > 0 {
				first = cs[0].dir
			}
		}
		c, err := startController(o, cdir, n, db, first)
		if err != nil {
			return nil, err
		}
		defer func() {
			if err := c.stop(); err != nil {
				log.Printf("controller %s: %v", c.addr, err)
			}
		}()
		if i > 0 && c.pin != cs[0].pin {
			return nil, fmt.Errorf("replica %d has pin %s, replica 1 %s", i+1, c.pin, cs[0].pin)
		}
		cs[i] = c
	}
	c := cs[0] // the admin's, and the one changes are made through
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	admin, err := control.NewClient(c.addr, c.pin, nil, c.token)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	nw, err := admin.CreateNetwork(ctx, control.CreateNetworkRequest{Name: "bench", CIDR: netip.MustParsePrefix("10.64.0.0/16"), AutoAllow: true})
	if err != nil {
		return nil, err
	}
	tokens, err := tagRules(ctx, admin, nw.ID, o)
	if err != nil {
		return nil, err
	}
	r.Tags, r.Rules, r.Hubs = o.tags, o.rules, o.hubs

	log.Printf("N=%d: making %d identities", n, n)
	f := &fleet{ms: make([]*member, n), delta: o.delta}
	var wg sync.WaitGroup
	var mkErr atomic.Pointer[error]
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				m, err := newMember(i, cs[i%len(cs)].addr, c.pin, nw.ID)
				if err != nil {
					mkErr.Store(&err)
					return
				}
				m.replica = i % len(cs)
				switch {
				case o.hubs > 0 && i < o.hubs:
					m.token = tokens[0]
				case o.hubs > 0:
					m.token = tokens[1]
				case len(tokens) > 0:
					m.token = tokens[i%len(tokens)]
				}
				f.ms[i] = m
			}
		}()
	}
	wg.Wait()
	if e := mkErr.Load(); e != nil {
		return nil, *e
	}
	ids := make([]string, n)
	for i, m := range f.ms {
		ids[i] = m.node
	}
	if f.byNode, err = newNodeIndex(ids); err != nil {
		return nil, err
	}

	// The join storm: every member joins, at most o.concurrency at once,
	// and starts its long-poll as soon as it is in.
	log.Printf("N=%d: join storm, %d at a time", n, o.concurrency)
	sem := make(chan struct{}, o.concurrency)
	start := time.Now()
	ctlCPU := make([]float64, len(cs))
	for i, c := range cs {
		ctlCPU[i] = procCPU(c.pid)
	}
	benchCPU, db0 := selfCPU(), dbCPU()
	var joinErrs atomic.Int64
	var lastErr atomic.Pointer[error]
	for _, m := range f.ms {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			for try := 0; try < 5; try++ {
				if err = f.join(ctx, m); err == nil {
					break
				}
				time.Sleep(time.Duration(try+1) * 200 * time.Millisecond)
			}
			<-sem
			if err != nil {
				joinErrs.Add(1)
				lastErr.Store(&err)
				return
			}
			go f.poll(ctx, m, control.MaxSyncWait)
		}()
	}
	wg.Wait()
	r.JoinStormS = time.Since(start).Seconds()
	r.JoinsPerS = float64(n) / r.JoinStormS
	r.RSSMiB.AfterStorm = r.rss(cs, o, "VmRSS", func(x *rss) *float64 { return &x.AfterStorm })
	if k := joinErrs.Load(); k > 0 {
		return r, fmt.Errorf("%d joins failed, the last with %v", k, *lastErr.Load())
	}
	log.Printf("N=%d: all joined in %.1f s; waiting until every member holds every peer", n, r.JoinStormS)
	converged := func() bool {
		for i, m := range f.ms {
			if m.npeer.Load() != int64(wantPeers(n, o.hubs, i)) {
				return false
			}
		}
		return true
	}
	if err := waitFor(ctx, o.timeout, converged); err != nil {
		return r, fmt.Errorf("members did not converge: %w", err)
	}
	r.ConvergedS = time.Since(start).Seconds()
	r.StormCPU.Bench = selfCPU() - benchCPU
	r.StormCPU.Database = dbCPU() - db0
	if !o.inproc {
		for i, c := range cs {
			t := procCPU(c.pid) - ctlCPU[i]
			r.StormCPU.Controller += t
			if len(cs) > 1 {
				r.StormCPU.Replicas = append(r.StormCPU.Replicas, t)
			}
		}
	}
	r.StormBytes, r.StormCalls = f.bytes.Load(), f.calls.Load()
	// Let the long-polls settle in (everyone waiting at the same revision).
	nv, err := admin.Network(ctx, nw.ID)
	if err != nil {
		return r, err
	}
	if err := waitFor(ctx, o.timeout, func() bool {
		for _, m := range f.ms {
			if m.rev.Load() != nv.Revision {
				return false
			}
		}
		return true
	}); err != nil {
		return r, fmt.Errorf("members did not reach revision %d: %w", nv.Revision, err)
	}
	time.Sleep(2 * time.Second)
	r.RSSMiB.Idle = r.rss(cs, o, "VmRSS", func(x *rss) *float64 { return &x.Idle })
	if o.memprofile != "" {
		runtime.GC()
		if pf, err := os.Create(o.memprofile); err == nil {
			pprof.Lookup("heap").WriteTo(pf, 0)
			pf.Close()
		}
	}
	log.Printf("N=%d: converged at %.1f s; idle RSS %.0f MB", n, r.ConvergedS, r.RSSMiB.Idle)

	// One full configuration, for what full syncs would send per change.
	probe := f.ms[0]
	if err := f.post(ctx, probe, "/sync", control.SyncRequest{}, func(b []byte) { r.FullConfigBytes = int64(len(b)) }); err != nil {
		return r, err
	}

	// Change 1: the admin adds a route via member 0.
	ms, err := admin.Members(ctx, nw.ID)
	if err != nil {
		return r, err
	}
	var via netip.Addr
	for _, m := range ms {
		if m.NodeID == probe.node && len(m.Addresses) > 0 {
			via = m.Addresses[0]
		}
	}
	dest := netip.MustParsePrefix("172.16.0.0/16")
	ch, err := measure(ctx, f, o, "route add", nv.Revision, -1, []byte(`"dest":"`+dest.String()+`"`), r.FullConfigBytes, func() error {
		_, err := admin.AddRoute(ctx, nw.ID, control.Route{Dest: dest, Via: via})
		return err
	})
	r.Changes = append(r.Changes, ch)
	if err != nil {
		return r, err
	}

	// Change 2: one member reports a new endpoint.
	nv, err = admin.Network(ctx, nw.ID)
	if err != nil {
		return r, err
	}
	k := n / 2
	k -= k % len(cs) // on the first replica
	ep := netip.MustParseAddrPort("203.0.113.77:51820")
	ch, err = measure(ctx, f, o, "endpoint change", nv.Revision, k, []byte(ep.String()), r.FullConfigBytes, func() error {
		f.ms[k].report(ep)
		return nil
	})
	r.Changes = append(r.Changes, ch)
	if err != nil {
		return r, err
	}
	// Change 3, with rules: one rule inserted first, which concerns every
	// member (its destination is all members), or, hub and spoke, every
	// hub.
	if o.rules > 0 || o.hubs > 0 {
		nv, err = admin.Network(ctx, nw.ID)
		if err != nil {
			return r, err
		}
		rule := policy.MustParseRule("deny from tag:t0 to members on tcp/22")
		if o.hubs > 0 {
			rule = policy.MustParseRule("deny from tag:spoke to tag:hub on tcp/22")
		}
		ch, err = measure(ctx, f, o, "rule change", nv.Revision, -1, []byte(`tcp/22`), r.FullConfigBytes, func() error {
			_, err := admin.SetRules(ctx, nw.ID, control.SetRulesRequest{Rules: append(policy.Policy{rule}, nv.Rules...)})
			return err
		})
		r.Changes = append(r.Changes, ch)
		if err != nil {
			return r, err
		}
	}
	r.RSSMiB.Peak = r.rss(cs, o, "VmHWM", func(x *rss) *float64 { return &x.Peak })
	r.Errors = f.errors.Load()
	r.LoadEnd = loadavg()
	cancel()
	return r, nil
}

// rss reads an RSS figure (field of /proc/PID/status) of each replica,
// sets it (through at) in r.ReplicaRSSMiB when there are several, and
// returns the largest.
func (r *result) rss(cs []*ctl, o options, field string, at func(*rss) *float64) float64 {
	if len(cs) > 1 && !o.inproc && r.ReplicaRSSMiB == nil {
		r.ReplicaRSSMiB = make([]rss, len(cs))
	}
	top := 0.0
	for i, c := range cs {
		v := mib(status(c.pid, field))
		if r.ReplicaRSSMiB != nil {
			*at(&r.ReplicaRSSMiB[i]) = v
		}
		top = max(top, v)
	}
	return top
}

// ctlPGConns is the cap a controller puts on its connections to
// PostgreSQL (services/controller's maxPGConns).
const ctlPGConns = 16

// measure makes one change and waits until it has reached every member
// (but skip, the one that made it): the first answer each gets past
// revision base, which must contain want.
func measure(ctx context.Context, f *fleet, o options, name string, base uint64, skip int, want []byte, fullBytes int64, do func() error) (change, error) {
	only := 0
	if o.hubs > 0 && name != "route add" {
		// Under hub-and-spoke rules an endpoint change and a rule change
		// concern the hubs only.
		only = o.hubs
	}
	// Whether member i is to get the change, and how many are.
	concerned := func(i int) bool { return i != skip && (only == 0 || i < only) }
	n := 0
	for i := range f.ms {
		if concerned(i) {
			n++
		}
	}
	p := &phase{base: base, skip: skip, only: only, arrived: make([]atomic.Int64, len(f.ms)),
		check: func(b []byte) bool { return bytes.Contains(b, want) }}
	c := change{Name: name, Members: n, FullBytes: int64(n) * fullBytes}
	p.start = time.Now()
	f.phase.Store(p)
	defer f.phase.Store(nil)
	if err := do(); err != nil {
		return c, fmt.Errorf("%s: %w", name, err)
	}
	err := waitFor(ctx, min(o.timeout, 2*time.Minute), func() bool { return p.got.Load() >= int64(n) })
	c.Delivered, c.Correct, c.Deltas, c.Bytes = p.got.Load(), p.ok.Load(), p.deltas.Load(), p.bytes.Load()
	if c.Delivered > 0 {
		c.PerMember = float64(c.Bytes) / float64(c.Delivered)
	}
	ms := sortedMS(p, func(int) bool { return true })
	if len(ms) > 0 {
		c.MaxMS, c.P50MS, c.P99MS = ms[len(ms)-1], percentile(ms, 0.5), percentile(ms, 0.99)
	}
	if o.replicas > 1 {
		for rep := range o.replicas {
			on := func(i int) bool { return concerned(i) && f.ms[i].replica == rep }
			d := replicaDelivery{Replica: rep + 1}
			for i := range f.ms {
				if on(i) {
					d.Members++
				}
			}
			ms := sortedMS(p, on)
			if d.Delivered = int64(len(ms)); len(ms) > 0 {
				d.MaxMS, d.P50MS, d.P99MS = ms[len(ms)-1], percentile(ms, 0.5), percentile(ms, 0.99)
			}
			c.ByReplica = append(c.ByReplica, d)
		}
	}
	if err != nil {
		c.TimedOutAt = time.Since(p.start).Seconds()
		return c, fmt.Errorf("%s reached %d of %d members: %w", name, c.Delivered, n, err)
	}
	if c.Correct != c.Delivered {
		return c, fmt.Errorf("%s: %d of %d deliveries did not carry it", name, c.Delivered-c.Correct, c.Delivered)
	}
	log.Printf("%s: reached %d members, max %.0f ms, %d bytes", name, n, c.MaxMS, c.Bytes)
	for _, d := range c.ByReplica {
		log.Printf("%s: replica %d's %d members: p50 %.0f ms, max %.0f ms", name, d.Replica, d.Members, d.P50MS, d.MaxMS)
	}
	return c, errors.Join()
}

// tagRules makes, with -tags, one reusable allowing token per tag (t0,
// t1, ...) and, with -rules, sets that many rules naming the tags: rule i
// lets tag t(i) reach tag t(i+1) on one port, and the last lets
// everything through, so that every member still peers every other. It
// returns the tokens' secrets.
func tagRules(ctx context.Context, admin *control.Client, id string, o options) ([]string, error) {
	var secrets []string
	tags := make([]string, o.tags)
	for i := range tags {
		tags[i] = fmt.Sprintf("t%d", i)
	}
	if o.hubs > 0 {
		tags = []string{"hub", "spoke"}
	}
	for _, tag := range tags {
		t, err := admin.CreateToken(ctx, id, control.CreateTokenRequest{Reusable: true, Allow: true, Tags: []string{tag}})
		if err != nil {
			return nil, err
		}
		js, err := control.ParseJoinString(t.JoinString)
		if err != nil {
			return nil, err
		}
		secrets = append(secrets, js.Token)
	}
	if o.hubs > 0 {
		// Hub and spoke: spokes may reach the hubs, hubs may ping the
		// spokes; spokes never reach each other, so a spoke's peers are
		// the hubs and a hub's the spokes.
		p, err := policy.ParsePolicy("allow from tag:spoke to tag:hub\nallow from tag:hub to tag:spoke on icmp\n")
		if err == nil {
			_, err = admin.SetRules(ctx, id, control.SetRulesRequest{Rules: p})
		}
		return secrets, err
	}
	if o.rules == 0 {
		return secrets, nil
	}
	var p policy.Policy
	for i := range o.rules - 1 {
		p = append(p, policy.MustParseRule(fmt.Sprintf("allow from tag:t%d to tag:t%d on tcp/%d", i%o.tags, (i+1)%o.tags, 2000+i)))
	}
	p = append(p, policy.DefaultRules()...)
	_, err := admin.SetRules(ctx, id, control.SetRulesRequest{Rules: p})
	return secrets, err
}

// wantPeers is how many peers member i of n holds once converged: every
// other member, or under hub-and-spoke rules with hubs hubs (members 0 to
// hubs-1), the spokes for a hub and the hubs for a spoke.
func wantPeers(n, hubs, i int) int {
	switch {
	case hubs == 0:
		return n - 1
	case i < hubs:
		return n - hubs
	default:
		return hubs
	}
}
