// Command ctlbench measures the controller at scale: it starts a real
// controller (bin/gate controller, on 127.0.0.1) and N simulated members,
// API-level clients with their own identities and TLS connections and no
// dataplane, that all join one auto-allow network (at most -concurrency at
// a time) and then each hold a long-poll, as agents do. It reports the
// join storm's time, the time until every member holds every peer, the
// controller's RSS, and for two changes (a route added by the admin, one
// member's endpoint) the bytes the controller sent to deliver it and the
// time it took to reach each member. It prints a table and writes JSON.
// `make bench` runs it (scripts/bench.sh); it is not part of the gate
// binary.
//
// The controller's database is SQLite (its state directory) by default;
// with -db postgres, a PostgreSQL that ctlbench starts for each run
// (services/pglocal: its own directory on disk, production's durability
// settings, stopped and removed after the run). With -replicas 2, two
// controller processes share that database and one identity (the second
// gets copies of the first's key and admin token), each on a loopback
// port of its own that it advertises, and the members are split between
// them (member i on replica i mod 2): every change is made through the
// first replica, and is reported both as the time until every member has
// it and, per replica, until that replica's members have it (the second
// replica's learn it through PostgreSQL's notifications).
//
//	ctlbench -gate bin/gate -n 1000,10000 -out out/bench/controller.json
//	ctlbench -n 50                       # smoke
//	ctlbench -n 2000 -inproc -cpuprofile cpu.out   # controller in this process, to profile
//	ctlbench -n 1000 -db postgres -replicas 2      # two replicas on one PostgreSQL
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
)

type options struct {
	gate        string
	concurrency int
	delta       bool
	inproc      bool
	workdir     string
	memprofile  string
	ctlEnv      []string
	ctlArgs     []string
	timeout     time.Duration
	tags        int      // members join with one of this many tagged tokens (0: untagged)
	rules       int      // rules naming those tags, set before the storm (0: the default rule)
	hubs        int      // hub and spoke: this many hubs, the rest spokes that may reach only them
	db          string   // "sqlite" or "postgres"
	replicas    int      // controller processes on the one database (postgres only)
	pgSettings  []string // more PostgreSQL settings (name=value)
}

// result is one run, as the JSON has it.
type result struct {
	N             int      `json:"n"`
	Mode          string   `json:"mode"`     // "delta" (the current agent) or "full" (an agent without ?delta=1)
	Database      string   `json:"database"` // "sqlite" or "postgres"
	Replicas      int      `json:"replicas"` // controller processes, the members split evenly between them
	Postgres      *pgInfo  `json:"postgres,omitempty"`
	ControllerEnv []string `json:"controller_env,omitempty"`
	ControllerArg []string `json:"controller_args,omitempty"`
	Concurrency   int      `json:"concurrency"`
	Tags          int      `json:"tags,omitempty"`
	Rules         int      `json:"rules,omitempty"`
	Hubs          int      `json:"hubs,omitempty"`
	JoinStormS    float64  `json:"join_storm_s"`
	JoinsPerS     float64  `json:"joins_per_s"`
	ConvergedS    float64  `json:"converged_s"`   // until every member holds every peer
	StormBytes    int64    `json:"storm_bytes"`   // answer bytes received until then
	StormCalls    int64    `json:"storm_answers"` // answers (joins and syncs) received until then
	// StormCPU is the CPU time (user and system) spent until then by the
	// controller and by the bench's simulated members, which share the
	// machine: on few cores the storm's time is their sum over the cores.
	StormCPU struct {
		Controller float64   `json:"controller_s,omitempty"`          // not with -inproc; with replicas, their sum
		Replicas   []float64 `json:"controller_replicas_s,omitempty"` // each replica's
		Database   float64   `json:"database_s,omitempty"`            // PostgreSQL: the postmaster and its children
		Bench      float64   `json:"bench_s"`
	} `json:"storm_cpu"`
	// RSSMiB is the controller's, with replicas the largest replica's;
	// ReplicaRSSMiB has each replica's.
	RSSMiB          rss      `json:"rss_mib"`
	ReplicaRSSMiB   []rss    `json:"replicas_rss_mib,omitempty"`
	FullConfigBytes int64    `json:"full_config_bytes"` // one member's full configuration at the end
	Changes         []change `json:"changes"`
	Errors          int64    `json:"errors"`
	LoadStart       string   `json:"loadavg_start"`
	LoadEnd         string   `json:"loadavg_end"`
}

type rss struct {
	AfterStorm float64 `json:"after_storm"`
	Idle       float64 `json:"idle"` // every member waiting in a long-poll
	Peak       float64 `json:"peak"`
	InProcess  bool    `json:"in_process,omitempty"` // with -inproc the figures include the bench
}

// pgInfo is the PostgreSQL a run used.
type pgInfo struct {
	Version  string   `json:"version"`
	Settings []string `json:"settings"` // as the server was started (postgres -c)
}

type change struct {
	Name       string  `json:"name"`
	Members    int     `json:"members"`   // members it had to reach
	Delivered  int64   `json:"delivered"` // members it reached
	Correct    int64   `json:"correct"`   // deliveries that carried it
	Deltas     int64   `json:"deltas"`    // deliveries that were deltas
	Bytes      int64   `json:"bytes"`     // answer bytes of all deliveries
	PerMember  float64 `json:"bytes_per_member"`
	FullBytes  int64   `json:"full_equivalent_bytes"` // Members x a full configuration: what full syncs send
	MaxMS      float64 `json:"max_ms"`
	P50MS      float64 `json:"p50_ms"`
	P99MS      float64 `json:"p99_ms"`
	TimedOutAt float64 `json:"timed_out_s,omitempty"`
	// ByReplica, with replicas: the same for each replica's members (the
	// change is made through the first).
	ByReplica []replicaDelivery `json:"by_replica,omitempty"`
}

// replicaDelivery is how a change reached the members of one replica.
type replicaDelivery struct {
	Replica   int     `json:"replica"` // 1: the one the change was made through
	Members   int     `json:"members"`
	Delivered int64   `json:"delivered"`
	MaxMS     float64 `json:"max_ms"`
	P50MS     float64 `json:"p50_ms"`
	P99MS     float64 `json:"p99_ms"`
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("ctlbench: ")
	var o options
	sizes := flag.String("n", "1000,10000", "member counts, comma-separated; one run each")
	smoke := flag.Bool("smoke", false, "tiny run (50 members) to check the harness")
	out := flag.String("out", "", "write the results as JSON here")
	full := flag.Bool("full", false, "members ask for full configurations (an agent without delta sync), for comparison")
	cpuprof := flag.String("cpuprofile", "", "write a CPU profile of this process (use with -inproc to see the controller)")
	flag.StringVar(&o.gate, "gate", "bin/gate", "the gate binary")
	flag.IntVar(&o.concurrency, "concurrency", 200, "joins under way at once during the storm")
	flag.BoolVar(&o.inproc, "inproc", false, "run the controller in this process (to profile it; RSS then includes the bench)")
	flag.StringVar(&o.memprofile, "memprofile", "", "write a heap profile of this process when all members wait (use with -inproc)")
	flag.Func("ctl-env", "KEY=VALUE for the controller's environment only, e.g. GOMEMLIMIT=400MiB (repeatable)", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("want KEY=VALUE")
		}
		o.ctlEnv = append(o.ctlEnv, v)
		return nil
	})
	flag.Func("ctl-arg", "an argument for the gate controller command, e.g. -ctl-arg=--memory-limit -ctl-arg=460MiB (repeatable)", func(v string) error {
		o.ctlArgs = append(o.ctlArgs, v)
		return nil
	})
	flag.StringVar(&o.workdir, "workdir", "", "where the controller's state goes (default: a temporary directory)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up on a phase after this long")
	flag.IntVar(&o.tags, "tags", 0, "members join with reusable tokens carrying one of this many tags (t0, t1, ...), round robin")
	flag.IntVar(&o.hubs, "hubs", 0, "hub and spoke: members 0 to N-1 are hubs, the rest spokes that may reach only the hubs (each spoke holds N peers); the endpoint and rule changes are measured at the hubs")
	flag.StringVar(&o.db, "db", "sqlite", "the controller's database: sqlite (in its state directory) or postgres (a PostgreSQL this program starts for each run, fsync and synchronous_commit on, and stops)")
	flag.IntVar(&o.replicas, "replicas", 1, "with -db postgres: this many controller processes on the one database, the members split between them; changes are made through the first")
	flag.Func("pg-set", "with -db postgres: a PostgreSQL setting NAME=VALUE, e.g. -pg-set fsync=off (repeatable)", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("want NAME=VALUE")
		}
		o.pgSettings = append(o.pgSettings, v)
		return nil
	})
	flag.IntVar(&o.rules, "rules", 0, "with -tags: this many rules naming the tags, set before the storm (the last lets everything through, so every member still peers every other); adds a 'rule change' measurement")
	flag.Parse()
	o.delta = !*full
	if o.inproc && (len(o.ctlArgs) > 0 || len(o.ctlEnv) > 0) {
		log.Fatal("-ctl-arg and -ctl-env are for a controller process; -inproc runs it in this one")
	}
	if *smoke {
		*sizes, o.concurrency = "50", 20
	}
	if o.rules > 0 && o.tags == 0 {
		log.Fatal("-rules needs -tags")
	}
	if o.hubs > 0 && (o.tags > 0 || o.rules > 0) {
		log.Fatal("-hubs makes its own tags and rules: no -tags or -rules with it")
	}
	switch {
	case o.db != "sqlite" && o.db != "postgres":
		log.Fatalf("-db %q: want sqlite or postgres", o.db)
	case o.replicas < 1 || o.replicas > 8:
		log.Fatal("-replicas: want 1 to 8")
	case o.replicas > 1 && o.db != "postgres":
		log.Fatal("-replicas needs -db postgres: replicas share a PostgreSQL database")
	case len(o.pgSettings) > 0 && o.db != "postgres":
		log.Fatal("-pg-set needs -db postgres")
	}
	var ns []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 2 || n > 60000 {
			log.Fatalf("-n %q: want member counts of 2 to 60000", s)
		}
		ns = append(ns, n)
	}
	// Each member holds a connection here, and the controller (in this
	// process with -inproc) one for it; replicas split the members.
	want := uint64(slices.Max(ns))
	if o.inproc {
		want *= 2
	}
	if err := raiseFileLimit(want + 1024); err != nil {
		log.Fatal(err)
	}
	stopOnSignal()
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	doc := struct {
		Machine struct {
			Cores      int    `json:"cores"`
			GOMAXPROCS int    `json:"gomaxprocs"`
			Kernel     string `json:"kernel"`
		} `json:"machine"`
		Runs []result `json:"runs"`
	}{}
	doc.Machine.Cores, doc.Machine.GOMAXPROCS = runtime.NumCPU(), runtime.GOMAXPROCS(0)
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		doc.Machine.Kernel = strings.TrimSpace(string(b))
	}
	failed := false
	for _, n := range ns {
		r, err := run(n, o)
		if err != nil {
			log.Printf("N=%d: %v", n, err)
			failed = true
		}
		if r != nil {
			doc.Runs = append(doc.Runs, *r)
		}
	}
	printTable(doc.Runs)
	if *out != "" {
		b, _ := json.MarshalIndent(doc, "", "  ")
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			log.Fatal(err)
		}
		fmt.Println("JSON:", *out)
	}
	if failed {
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// running are the stop functions of what a run started and has not
// stopped yet (controllers, PostgreSQL).
var running struct {
	sync.Mutex
	next  int
	stops map[int]func()
}

// started records stop as what stops something a run started, until the
// returned function says it is stopped.
func started(stop func()) (stopped func()) {
	running.Lock()
	defer running.Unlock()
	if running.stops == nil {
		running.stops = map[int]func(){}
	}
	id := running.next
	running.next++
	running.stops[id] = stop
	return func() {
		running.Lock()
		delete(running.stops, id)
		running.Unlock()
	}
}

// stopOnSignal makes SIGINT and SIGTERM stop what runs before ctlbench
// exits: an interrupted bench leaves no controller, PostgreSQL or
// temporary directory behind.
func stopOnSignal() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sig
		log.Printf("%v: stopping the controllers and PostgreSQL", s)
		running.Lock()
		// The last started first: controllers before their database,
		// the directories last.
		for _, id := range slices.Backward(slices.Sorted(maps.Keys(running.stops))) {
			running.stops[id]()
		}
		running.Unlock()
		pprof.StopCPUProfile()
		os.Exit(1)
	}()
}

// raiseFileLimit makes room for want open files: every member holds a
// connection, and so does the controller for each. The soft limit goes up
// to the hard one; as root, the hard one too. The controller inherits it.
func raiseFileLimit(want uint64) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	if l.Max < want {
		nl := syscall.Rlimit{Cur: want, Max: want}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl); err == nil {
			return nil
		}
		return fmt.Errorf("open file limit %d is below the %d this run needs (raise it, or run as root)", l.Max, want)
	}
	l.Cur = max(l.Cur, want)
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted)-1)*p+0.5))]
}

// mib converts kB (as /proc/PID/status counts them, KiB) to MiB.
func mib(kb int64) float64 { return float64(kb*10/1024) / 10 }

// procCPU is the CPU time process pid has used so far, in seconds: utime
// and stime of /proc/PID/stat, in the kernel's fixed 100 ticks a second.
func procCPU(pid int) float64 {
	f := statFields(pid)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return float64(u+s) / 100
}

// treeCPU is the CPU time process pid and its children have used so far,
// in seconds: the children that still run, and through pid's cutime and
// cstime those it has waited for (PostgreSQL's postmaster and its
// backends).
func treeCPU(pid int) float64 {
	sum := procCPU(pid)
	if f := statFields(pid); len(f) > 14 {
		cu, _ := strconv.ParseInt(f[13], 10, 64)
		cs, _ := strconv.ParseInt(f[14], 10, 64)
		sum += float64(cu+cs) / 100
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(child); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			sum += procCPU(child)
		}
	}
	return sum
}

// statFields is /proc/PID/stat's fields after the command (which is in
// parentheses and may hold spaces): state, ppid, ...
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// selfCPU is the CPU time this process has used so far, in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func printTable(rs []result) {
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "N\tmode\tdatabase\tjoin storm s\tjoins/s\tall peers s\tstorm answers\tstorm MB\tCPU ctl s\tCPU db s\tCPU bench s\tRSS storm MiB\tRSS idle MiB\tRSS peak MiB\tfull config KiB\terrors\tload start -> end")
	for _, r := range rs {
		fmt.Fprintf(w, "%d\t%s\t%s\t%.1f\t%.0f\t%.1f\t%d\t%.0f\t%.1f\t%s\t%.1f\t%s\t%s\t%s\t%.0f\t%d\t%s -> %s\n", r.N, r.Mode, dbLabel(r), r.JoinStormS, r.JoinsPerS,
			r.ConvergedS, r.StormCalls, float64(r.StormBytes)/1e6, r.StormCPU.Controller, dbCPU(r), r.StormCPU.Bench,
			rssCol(r, func(x rss) float64 { return x.AfterStorm }), rssCol(r, func(x rss) float64 { return x.Idle }),
			rssCol(r, func(x rss) float64 { return x.Peak }), float64(r.FullConfigBytes)/1024, r.Errors, r.LoadStart, r.LoadEnd)
	}
	w.Flush()
	fmt.Println()
	fmt.Fprintln(w, "N\tmode\tdatabase\tchange\treached\tcorrect\tdeltas\tbytes\tbytes/member\tfull-sync bytes\tp50 ms\tp99 ms\tmax ms")
	for _, r := range rs {
		for _, c := range r.Changes {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d/%d\t%d\t%d\t%d\t%.0f\t%d\t%.0f\t%.0f\t%.0f\n", r.N, r.Mode, dbLabel(r), c.Name, c.Delivered, c.Members,
				c.Correct, c.Deltas, c.Bytes, c.PerMember, c.FullBytes, c.P50MS, c.P99MS, c.MaxMS)
			for _, d := range c.ByReplica {
				fmt.Fprintf(w, "%d\t%s\t%s\t%s, replica %d's members\t%d/%d\t-\t-\t-\t-\t-\t%.0f\t%.0f\t%.0f\n", r.N, r.Mode, dbLabel(r), c.Name, d.Replica,
					d.Delivered, d.Members, d.P50MS, d.P99MS, d.MaxMS)
			}
		}
	}
	w.Flush()
}

// dbLabel names a run's database: sqlite, postgres, or postgres xN for N
// replicas on it.
func dbLabel(r result) string {
	if r.Replicas > 1 {
		return fmt.Sprintf("%s x%d", r.Database, r.Replicas)
	}
	return r.Database
}

func dbCPU(r result) string {
	if r.Database == "sqlite" {
		return "-"
	}
	return fmt.Sprintf("%.1f", r.StormCPU.Database)
}

// rssCol is an RSS figure of a run: the controller's, or each replica's
// (r1/r2).
func rssCol(r result, f func(rss) float64) string {
	if len(r.ReplicaRSSMiB) < 2 {
		return fmt.Sprintf("%.0f", f(r.RSSMiB))
	}
	var s []string
	for _, x := range r.ReplicaRSSMiB {
		s = append(s, fmt.Sprintf("%.0f", f(x)))
	}
	return strings.Join(s, "/")
}

// waitFor polls cond until it holds or d passes.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// sortedMS is the times a change took to reach the members keep admits,
// in milliseconds, sorted.
func sortedMS(p *phase, keep func(i int) bool) []float64 {
	var out []float64
	for i := range p.arrived {
		if d := p.arrived[i].Load(); d > 0 && keep(i) {
			out = append(out, float64(d)/1e6)
		}
	}
	slices.SortFunc(out, cmp.Compare)
	return out
}
