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
//	ctlbench -gate bin/gate -n 1000,10000 -out out/bench/controller.json
//	ctlbench -n 50                       # smoke
//	ctlbench -n 2000 -inproc -cpuprofile cpu.out   # controller in this process, to profile
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
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
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
	tags        int // members join with one of this many tagged tokens (0: untagged)
	rules       int // rules naming those tags, set before the storm (0: the default rule)
	hubs        int // hub and spoke: this many hubs, the rest spokes that may reach only them
}

// result is one run, as the JSON has it.
type result struct {
	N             int      `json:"n"`
	Mode          string   `json:"mode"` // "delta" (the current agent) or "full" (an agent without ?delta=1)
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
		Controller float64 `json:"controller_s,omitempty"` // not with -inproc
		Bench      float64 `json:"bench_s"`
	} `json:"storm_cpu"`
	RSSMiB struct {
		AfterStorm float64 `json:"after_storm"`
		Idle       float64 `json:"idle"` // every member waiting in a long-poll
		Peak       float64 `json:"peak"`
		InProcess  bool    `json:"in_process,omitempty"` // with -inproc the figures include the bench
	} `json:"rss_mib"`
	FullConfigBytes int64    `json:"full_config_bytes"` // one member's full configuration at the end
	Changes         []change `json:"changes"`
	Errors          int64    `json:"errors"`
	LoadStart       string   `json:"loadavg_start"`
	LoadEnd         string   `json:"loadavg_end"`
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
	var ns []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 2 || n > 60000 {
			log.Fatalf("-n %q: want member counts of 2 to 60000", s)
		}
		ns = append(ns, n)
	}
	// Each member holds a connection here, and the controller one for it.
	perConn := uint64(1)
	if o.inproc {
		perConn = 2
	}
	if err := raiseFileLimit(perConn*uint64(slices.Max(ns)) + 1024); err != nil {
		log.Fatal(err)
	}
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
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return float64(u+s) / 100
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
	fmt.Fprintln(w, "N\tmode\tjoin storm s\tjoins/s\tall peers s\tstorm answers\tstorm MB\tCPU ctl s\tCPU bench s\tRSS storm MiB\tRSS idle MiB\tRSS peak MiB\tfull config KiB\terrors\tload start -> end")
	for _, r := range rs {
		fmt.Fprintf(w, "%d\t%s\t%.1f\t%.0f\t%.1f\t%d\t%.0f\t%.1f\t%.1f\t%.0f\t%.0f\t%.0f\t%.0f\t%d\t%s -> %s\n", r.N, r.Mode, r.JoinStormS, r.JoinsPerS,
			r.ConvergedS, r.StormCalls, float64(r.StormBytes)/1e6, r.StormCPU.Controller, r.StormCPU.Bench,
			r.RSSMiB.AfterStorm, r.RSSMiB.Idle, r.RSSMiB.Peak, float64(r.FullConfigBytes)/1024, r.Errors, r.LoadStart, r.LoadEnd)
	}
	w.Flush()
	fmt.Println()
	fmt.Fprintln(w, "N\tmode\tchange\treached\tcorrect\tdeltas\tbytes\tbytes/member\tfull-sync bytes\tp50 ms\tp99 ms\tmax ms")
	for _, r := range rs {
		for _, c := range r.Changes {
			fmt.Fprintf(w, "%d\t%s\t%s\t%d/%d\t%d\t%d\t%d\t%.0f\t%d\t%.0f\t%.0f\t%.0f\n", r.N, r.Mode, c.Name, c.Delivered, c.Members,
				c.Correct, c.Deltas, c.Bytes, c.PerMember, c.FullBytes, c.P50MS, c.P99MS, c.MaxMS)
		}
	}
	w.Flush()
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

func sortedMS(p *phase) []float64 {
	var out []float64
	for i := range p.arrived {
		if d := p.arrived[i].Load(); d > 0 {
			out = append(out, float64(d)/1e6)
		}
	}
	slices.SortFunc(out, cmp.Compare)
	return out
}
