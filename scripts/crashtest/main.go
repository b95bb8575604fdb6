// Command crashtest kills the controller with SIGKILL in the middle of a
// stream of writes, again and again, and checks after every restart that
// nothing it acknowledged was lost. It starts `bin/gate controller` on
// 127.0.0.1 as a child, runs writers (create and delete networks, add and
// delete routes, create tokens, members joining with and without tokens,
// allow, deny, set-ip, remove), each on networks of its own, recording
// every write the controller acknowledged (a 2xx answer); kills the
// controller at a random moment; restarts it on the same state directory
// and compares what it lists with the record: every acknowledged write is
// there, every acknowledged delete stays deleted, and the one write each
// writer had in flight at the kill is either done or not. It also checks
// the database (SQLite's integrity and foreign key checks) and the
// listings (every network shows as listed, addresses inside the network
// and unique in it). The state accumulates over the trials, so a later
// kill must not lose what an earlier trial wrote either.
//
//	crashtest -trials 100 -out out/faults/controller-kill.json
//	crashtest -enospc DIR     # DIR: a small, empty filesystem (see scripts/fault-test.sh)
//
// `make faults` and `make test` run it through scripts/fault-test.sh.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gatenet/gate/services/control"

	_ "modernc.org/sqlite"
)

type options struct {
	gate    string
	trials  int
	writers int
	minKill time.Duration
	maxKill time.Duration
	seed    uint64
	out     string
	workdir string
	verbose bool
	// unnamedOK accepts, in the ENOSPC run, an admin API answer that does
	// not name the cause (the log must still name it).
	unnamedOK bool
	// injectLoss records, in the first trial, a write that was never
	// made, to show that the check finds a lost write (the run must fail).
	injectLoss bool
}

// trialResult is one kill, as the JSON has it.
type trialResult struct {
	Trial     int      `json:"trial"`
	KillAfter float64  `json:"kill_after_ms"`
	Acked     int      `json:"acked"`
	InFlight  int      `json:"in_flight"` // writes with no answer at the kill
	Restart   float64  `json:"restart_ms"`
	Seconds   float64  `json:"seconds"`
	Lost      int      `json:"lost"`
	Problems  []string `json:"problems,omitempty"`
}

type summary struct {
	Trials        int                         `json:"trials"`
	Writers       int                         `json:"writers"`
	Acked         int                         `json:"writes_acked"`
	ByKind        map[string]int              `json:"acked_by_kind"`
	InFlight      int                         `json:"writes_in_flight_at_kill"`
	InFlightDone  int                         `json:"in_flight_found_done"`
	Refused       int                         `json:"writes_refused"`
	Lost          int                         `json:"lost"`
	Integrity     int                         `json:"integrity_failures"`
	PerTrialMS    struct{ Mean, Max float64 } `json:"trial_ms"`
	RestartMS     struct{ Mean, Max float64 } `json:"restart_ms"`
	FinalNetworks int                         `json:"final_networks"`
	FinalMembers  int                         `json:"final_members"`
	FinalTokens   int                         `json:"final_tokens"`
	FinalRoutes   int                         `json:"final_routes"`
	DBBytes       int64                       `json:"db_bytes"`
	Seed          uint64                      `json:"seed"`
	TotalS        float64                     `json:"total_s"`
	Runs          []trialResult               `json:"runs"`
}

// secrets holds the join tokens' secrets by note: the admin API shows a
// secret once, when the token is made.
var secrets = secretStore{m: map[string]string{}}

type secretStore struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *secretStore) set(k, v string) { s.mu.Lock(); s.m[k] = v; s.mu.Unlock() }
func (s *secretStore) get(k string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[k]
}

func main() {
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetPrefix("crashtest: ")
	var o options
	enospc := flag.String("enospc", "", "instead of kill trials: run the controller with its state in this (small, empty) filesystem, fill it, and check a write fails with a clear error and nothing acknowledged is lost")
	flag.StringVar(&o.gate, "gate", "bin/gate", "the gate binary")
	flag.IntVar(&o.trials, "trials", 100, "kills")
	flag.IntVar(&o.writers, "writers", 4, "writers running at once (each on networks of its own)")
	flag.DurationVar(&o.minKill, "min-kill", 20*time.Millisecond, "earliest kill after the writes start")
	flag.DurationVar(&o.maxKill, "max-kill", 400*time.Millisecond, "latest kill after the writes start")
	flag.Uint64Var(&o.seed, "seed", 0, "random seed (0: from the clock)")
	flag.StringVar(&o.out, "out", "", "write the results as JSON here")
	flag.StringVar(&o.workdir, "workdir", "", "the controller's state directory (default: a temporary one, removed after a clean run)")
	flag.BoolVar(&o.verbose, "v", false, "log every trial")
	flag.BoolVar(&o.unnamedOK, "enospc-unnamed-ok", false, "with -enospc: accept an answer that does not name the full disk (the controller's log must)")
	flag.BoolVar(&o.injectLoss, "inject-loss", false, "self-check: pretend one write was acknowledged that never was; the run must then report it lost and fail")
	flag.Parse()
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	if *enospc != "" {
		if err := runENOSPC(o, *enospc); err != nil {
			log.Fatalf("ENOSPC: FAIL: %v", err)
		}
		return
	}
	if o.trials < 1 || o.writers < 1 || o.maxKill < o.minKill {
		log.Fatal("want -trials >= 1, -writers >= 1, -max-kill >= -min-kill")
	}
	s, err := runKills(o)
	if s != nil {
		printSummary(s)
		if o.out != "" {
			b, _ := json.MarshalIndent(s, "", "  ")
			os.MkdirAll(filepath.Dir(o.out), 0o755)
			if werr := os.WriteFile(o.out, append(b, '\n'), 0o644); werr != nil {
				log.Fatal(werr)
			}
			fmt.Println("JSON:", o.out)
		}
	}
	if err != nil {
		log.Fatalf("FAIL: %v", err)
	}
}

// ctl is a controller process.
type ctl struct {
	cmd   *exec.Cmd
	dir   string
	addr  string
	pin   string
	token string
	logf  *os.File
	exit  chan error
}

// startController starts `gate controller` on addr with its state in dir,
// its output appended to logPath, and waits until it answers an admin call.
func startController(gate, dir, addr, logPath string) (*ctl, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(lf, "---- start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(gate, "controller", "--state", dir, "--listen", addr)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("starting %s controller: %w", gate, err)
	}
	c := &ctl{cmd: cmd, dir: dir, addr: addr, logf: lf, exit: make(chan error, 1)}
	go func() { c.exit <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := c.ready(); err == nil {
			return c, nil
		} else if time.Now().After(deadline) {
			c.kill()
			return nil, fmt.Errorf("controller did not come up in 30 s (log: %s): %v", lf.Name(), err)
		}
		select {
		case err := <-c.exit:
			c.exit <- err
			lf.Close()
			return nil, fmt.Errorf("controller exited at start (%v); log: %s", err, lf.Name())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (c *ctl) ready() error {
	b, err := os.ReadFile(filepath.Join(c.dir, "controller.url"))
	if err != nil {
		return err
	}
	js, err := control.ParseControllerAddress(strings.TrimSpace(string(b)))
	if err != nil {
		return err
	}
	tok, err := os.ReadFile(filepath.Join(c.dir, "admin-token"))
	if err != nil {
		return err
	}
	c.pin, c.token = js.Pin, strings.TrimSpace(string(tok))
	a, err := c.admin()
	if err != nil {
		return err
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = a.Networks(ctx)
	return err
}

func (c *ctl) admin() (*control.Client, error) { return control.NewClient(c.addr, c.pin, nil, c.token) }

// kill sends SIGKILL and waits for the process to be gone.
func (c *ctl) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exit
	c.exit <- nil
	c.logf.Close()
}

// stop ends the controller cleanly.
func (c *ctl) stop() error {
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.exit:
		c.exit <- err
		c.logf.Close()
		return err
	case <-time.After(15 * time.Second):
		c.kill()
		return fmt.Errorf("controller did not stop on SIGTERM within 15 s")
	}
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// integrity runs SQLite's own checks on the controller's database, read
// only, next to the running controller (WAL allows a reader).
func integrity(dir string) []string {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "controller.db")+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return []string{"opening the database: " + err.Error()}
	}
	defer db.Close()
	var out []string
	rows, err := db.Query(`PRAGMA integrity_check`)
	if err != nil {
		return []string{"integrity_check: " + err.Error()}
	}
	for rows.Next() {
		var s string
		rows.Scan(&s)
		if s != "ok" {
			out = append(out, "integrity_check: "+s)
		}
	}
	rows.Close()
	rows, err = db.Query(`PRAGMA foreign_key_check`)
	if err != nil {
		return append(out, "foreign_key_check: "+err.Error())
	}
	for rows.Next() {
		var table, parent string
		var rowid, fk sql.NullInt64
		rows.Scan(&table, &rowid, &parent, &fk)
		out = append(out, fmt.Sprintf("foreign_key_check: %s row %d has no %s", table, rowid.Int64, parent))
	}
	rows.Close()
	return out
}

func runKills(o options) (*summary, error) {
	start := time.Now()
	work := o.workdir
	if work == "" {
		d, err := os.MkdirTemp("", "gate-crashtest.")
		if err != nil {
			return nil, err
		}
		work = d
	}
	dir := filepath.Join(work, "ctl")
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	rnd := mrand.New(mrand.NewPCG(o.seed, 0x6761746563726173))
	log.Printf("%d trials, %d writers, kill %v-%v after the writes start, seed %d, state %s", o.trials, o.writers, o.minKill, o.maxKill, o.seed, dir)
	c, err := startController(o.gate, dir, addr, dir+".log")
	if err != nil {
		return nil, err
	}
	defer func() {
		if c != nil {
			c.kill()
		}
	}()
	s := &summary{Trials: o.trials, Writers: o.writers, ByKind: map[string]int{}, Seed: o.seed}
	var cmu sync.Mutex
	k := 0
	cnt := &counters{next: func() int { cmu.Lock(); defer cmu.Unlock(); k++; return k }}
	// An empty controller to begin with.
	model := world{}
	var trialMS, restartMS []float64
	failed := false
	for t := 1; t <= o.trials; t++ {
		t0 := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		ws := make([]*worker, o.writers)
		var wg sync.WaitGroup
		for i := range ws {
			admin, err := c.admin()
			if err != nil {
				cancel()
				return s, err
			}
			ws[i] = &worker{idx: i, prefix: fmt.Sprintf("w%d-", i), admin: admin, addr: c.addr, pin: c.pin,
				rnd: mrand.New(mrand.NewPCG(rnd.Uint64(), uint64(i))), counter: cnt,
				model: model.only(fmt.Sprintf("w%d-", i)).clone()}
			wg.Add(1)
			go func() { defer wg.Done(); ws[i].run(ctx) }()
		}
		killAfter := o.minKill + time.Duration(rnd.Int64N(int64(o.maxKill-o.minKill)+1))
		time.Sleep(killAfter)
		c.kill()
		wait := make(chan struct{})
		go func() { wg.Wait(); close(wait) }()
		select {
		case <-wait:
		case <-time.After(30 * time.Second):
			cancel()
			return s, fmt.Errorf("trial %d: writers still busy 30 s after the kill (a request hangs)", t)
		}
		cancel()
		for _, w := range ws {
			w.admin.Close()
		}
		if o.injectLoss && t == 1 {
			for name, n := range ws[0].model {
				phantom := op{kind: "route-add", net: name, dest: "192.0.2.0/24", via: netip.MustParsePrefix(n.CIDR).Addr().Next().String()}
				apply(ws[0].model, phantom, true)
				ws[0].acked = append(ws[0].acked, phantom)
				log.Printf("trial 1: injected a write that was never made: %s", phantom)
				break
			}
		}
		r0 := time.Now()
		c, err = startController(o.gate, dir, addr, dir+".log")
		if err != nil {
			return s, fmt.Errorf("trial %d: restart after the kill: %w", t, err)
		}
		restart := time.Since(r0)
		admin, err := c.admin()
		if err != nil {
			return s, err
		}
		sctx, scancel := context.WithTimeout(context.Background(), 60*time.Second)
		got, bad, err := snapshot(sctx, admin)
		scancel()
		admin.Close()
		if err != nil {
			return s, fmt.Errorf("trial %d: reading back: %w", t, err)
		}
		tr := trialResult{Trial: t, KillAfter: ms(killAfter), Restart: ms(restart)}
		tr.Problems = append(tr.Problems, bad...)
		ib := integrity(dir)
		s.Integrity += len(ib)
		tr.Problems = append(tr.Problems, ib...)
		prefixes := map[string]bool{}
		for _, w := range ws {
			prefixes[w.prefix] = true
			tr.Acked += len(w.acked)
			for _, a := range w.acked {
				s.ByKind[a.kind]++
			}
			s.Refused += len(w.refused)
			for _, r := range w.refused {
				tr.Problems = append(tr.Problems, "refused: "+r)
			}
			mine := got.only(w.prefix)
			d := w.check(mine)
			tr.Lost += len(d)
			for _, x := range d {
				tr.Problems = append(tr.Problems, fmt.Sprintf("writer %d: %s", w.idx, x))
			}
			if w.uncertain != nil {
				tr.InFlight++
				if len(diff(w.model, mine)) != 0 && len(d) == 0 {
					s.InFlightDone++
				}
				if o.verbose {
					log.Printf("trial %d: writer %d: in flight at the kill: %s", t, w.idx, w.uncertain)
				}
			}
		}
		for name := range got {
			if i := strings.IndexByte(name, '-'); i < 0 || !prefixes[name[:i+1]] {
				tr.Problems = append(tr.Problems, "network "+name+" belongs to no writer")
			}
		}
		// The next trial starts from what the controller holds: checked
		// above to be the acknowledged writes, give or take those in flight.
		model = got
		tr.Seconds = time.Since(t0).Seconds()
		trialMS = append(trialMS, tr.Seconds*1000)
		restartMS = append(restartMS, tr.Restart)
		s.Acked += tr.Acked
		s.InFlight += tr.InFlight
		s.Lost += tr.Lost
		s.Runs = append(s.Runs, tr)
		if len(tr.Problems) > 0 {
			failed = true
			log.Printf("trial %d: %d problems:", t, len(tr.Problems))
			for _, p := range tr.Problems[:min(len(tr.Problems), 20)] {
				log.Printf("   %s", p)
			}
		} else if o.verbose || t%10 == 0 || t == o.trials {
			log.Printf("trial %d: killed after %.0f ms, %d writes acknowledged (%d so far), %d in flight, restart %.0f ms: nothing lost",
				t, tr.KillAfter, tr.Acked, s.Acked, tr.InFlight, tr.Restart)
		}
	}
	s.PerTrialMS.Mean, s.PerTrialMS.Max = meanMax(trialMS)
	s.RestartMS.Mean, s.RestartMS.Max = meanMax(restartMS)
	for _, n := range model {
		s.FinalNetworks++
		s.FinalMembers += len(n.Members)
		s.FinalTokens += len(n.Tokens)
		s.FinalRoutes += len(n.Routes)
	}
	for _, f := range []string{"controller.db", "controller.db-wal"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err == nil {
			s.DBBytes += fi.Size()
		}
	}
	err = c.stop()
	c = nil
	s.TotalS = time.Since(start).Seconds()
	if err != nil {
		return s, fmt.Errorf("stopping the controller: %w", err)
	}
	if failed || s.Lost > 0 || s.Integrity > 0 || s.Refused > 0 {
		return s, fmt.Errorf("%d lost, %d integrity failures, %d refused writes (state kept in %s)", s.Lost, s.Integrity, s.Refused, work)
	}
	if o.workdir == "" {
		os.RemoveAll(work)
	}
	return s, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func meanMax(v []float64) (float64, float64) {
	if len(v) == 0 {
		return 0, 0
	}
	sum := 0.0
	for _, x := range v {
		sum += x
	}
	return sum / float64(len(v)), slices.Max(v)
}

func printSummary(s *summary) {
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "controller kill -9\ttrials\twrites acked\tin flight at kill (found done)\tlost\tintegrity failures\trefused\ttrial ms mean / max\trestart ms mean / max")
	fmt.Fprintf(w, "\t%d\t%d\t%d (%d)\t%d\t%d\t%d\t%.0f / %.0f\t%.0f / %.0f\n", len(s.Runs), s.Acked, s.InFlight, s.InFlightDone, s.Lost, s.Integrity, s.Refused,
		s.PerTrialMS.Mean, s.PerTrialMS.Max, s.RestartMS.Mean, s.RestartMS.Max)
	w.Flush()
	var kinds []string
	for k, n := range s.ByKind {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	slices.Sort(kinds)
	fmt.Printf("acknowledged by kind: %s\n", strings.Join(kinds, ", "))
	fmt.Printf("at the end: %d networks, %d members, %d tokens, %d routes; database and WAL %d bytes\n", s.FinalNetworks, s.FinalMembers, s.FinalTokens, s.FinalRoutes, s.DBBytes)
}
