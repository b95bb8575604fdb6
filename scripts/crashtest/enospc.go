package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/gatenet/gate/services/control"
)

// causeRE is what an error that names a full disk says.
var causeRE = regexp.MustCompile(`(?i)no space left|disk is full|disk full|storage is full`)

// runENOSPC runs the controller with its state on fs (a small filesystem,
// empty, mounted by the caller), makes some writes, fills fs, and checks:
// a write then fails promptly with an error (no hang), the log names the
// cause, reads still answer, and after the space is freed and the
// controller restarted every acknowledged write is there.
func runENOSPC(o options, fs string) (err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(fs, &st); err != nil {
		return err
	}
	log.Printf("state filesystem %s: %d KiB, %d KiB free", fs, st.Blocks*uint64(st.Bsize)/1024, st.Bavail*uint64(st.Bsize)/1024)
	dir := filepath.Join(fs, "ctl")
	logPath := filepath.Join(os.TempDir(), fmt.Sprintf("gate-enospc-ctl.%d.log", os.Getpid()))
	defer func() {
		if err == nil {
			os.Remove(logPath)
		} else {
			log.Printf("controller log kept: %s", logPath)
		}
	}()
	addr, err := freePort()
	if err != nil {
		return err
	}
	c, err := startController(o.gate, dir, addr, logPath)
	if err != nil {
		return err
	}
	defer func() {
		if c != nil {
			c.kill()
		}
	}()
	rnd := mrand.New(mrand.NewPCG(o.seed, 1))
	k := 0
	newWorker := func(model world) (*worker, error) {
		admin, err := c.admin()
		if err != nil {
			return nil, err
		}
		return &worker{prefix: "w0-", admin: admin, addr: c.addr, pin: c.pin, rnd: rnd,
			counter: &counters{next: func() int { k++; return k }}, model: model}, nil
	}
	wk, err := newWorker(world{})
	if err != nil {
		return err
	}
	// Some writes while there is room.
	ctx := context.Background()
	for len(wk.acked) < 40 {
		o, ok := wk.pick()
		if !ok {
			continue
		}
		if err := wk.do(ctx, &o); err != nil {
			return fmt.Errorf("write %s before the disk was full: %w", o, err)
		}
		apply(wk.model, o, true)
		wk.acked = append(wk.acked, o)
	}
	before := len(wk.acked)
	log.Printf("%d writes acknowledged with room to spare", before)

	// Fill the filesystem.
	filler := filepath.Join(fs, "filler")
	f, err := os.Create(filler)
	if err != nil {
		return err
	}
	buf := make([]byte, 4096)
	var filled int64
	for {
		n, err := f.Write(buf)
		filled += int64(n)
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				f.Close()
				return fmt.Errorf("filling: %w", err)
			}
			break
		}
	}
	f.Close()
	log.Printf("filled %s with %d KiB", fs, filled/1024)

	// Writes until one fails: the database may still have room inside its
	// files for a few.
	var failErr error
	var failOp op
	var took time.Duration
	deadline := time.Now().Add(90 * time.Second)
	for failErr == nil {
		if time.Now().After(deadline) || len(wk.acked)-before > 5000 {
			return fmt.Errorf("%d writes on a full disk all succeeded", len(wk.acked)-before)
		}
		o, ok := wk.pick()
		if !ok {
			continue
		}
		t0 := time.Now()
		err := wk.do(ctx, &o)
		took = time.Since(t0)
		if err == nil {
			apply(wk.model, o, true)
			wk.acked = append(wk.acked, o)
			continue
		}
		failErr, failOp = err, o
	}
	log.Printf("%d more writes acknowledged on the full disk, then %s failed after %v: %v", len(wk.acked)-before, failOp, took.Round(time.Millisecond), failErr)
	var problems []string
	var ae *control.APIError
	switch {
	case errors.Is(failErr, context.DeadlineExceeded):
		problems = append(problems, fmt.Sprintf("the write hung (no answer in 20 s): %v", failErr))
	case !errors.As(failErr, &ae):
		problems = append(problems, fmt.Sprintf("the write got no answer: %v", failErr))
	case ae.Status/100 != 5:
		problems = append(problems, fmt.Sprintf("a full disk answered HTTP %d (%s), not a server error", ae.Status, ae.Message))
	}
	if took > 10*time.Second {
		problems = append(problems, fmt.Sprintf("the failing write took %v", took))
	}
	named := causeRE.MatchString(failErr.Error())
	log.Printf("the admin API's answer names the cause: %v (%q)", named, failErr.Error())
	if !named && !o.unnamedOK {
		problems = append(problems, fmt.Sprintf("the answer does not name the cause (a full disk): %q", failErr.Error()))
	}
	time.Sleep(200 * time.Millisecond)
	lb, _ := os.ReadFile(logPath)
	if m := causeRE.FindIndex(lb); m == nil {
		problems = append(problems, "the controller's log does not name the cause (no space / disk is full)")
	} else {
		line := lb[:m[1]]
		if i := strings.LastIndexByte(string(line), '\n'); i >= 0 {
			line = line[i+1:]
		}
		log.Printf("controller log: %s...", line)
	}
	// More writes on the full disk: each answers promptly; one answered
	// with an error must have changed nothing.
	failed := 1
	for range 10 {
		o, ok := wk.pick()
		if !ok {
			continue
		}
		t0 := time.Now()
		err := wk.do(ctx, &o)
		if d := time.Since(t0); d > 10*time.Second {
			problems = append(problems, fmt.Sprintf("write %s on the full disk took %v", o, d))
		}
		if err == nil {
			apply(wk.model, o, true)
			wk.acked = append(wk.acked, o)
		} else if errors.As(err, &ae) && ae.Status/100 == 5 {
			failed++
		} else {
			problems = append(problems, fmt.Sprintf("write %s on the full disk: %v", o, err))
		}
	}
	// Reads still answer on a full disk.
	check := func(when string) {
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		admin, err := c.admin()
		if err != nil {
			problems = append(problems, err.Error())
			return
		}
		defer admin.Close()
		got, bad, err := snapshot(rctx, admin)
		if err != nil {
			problems = append(problems, fmt.Sprintf("reading %s: %v", when, err))
			return
		}
		problems = append(problems, bad...)
		for _, d := range diff(wk.model, got) {
			problems = append(problems, when+": "+d)
		}
	}
	check("on the full disk")
	log.Printf("%d writes failed on the full disk, each changing nothing", failed)

	// Free the space: writes work again without a restart.
	if err := os.Remove(filler); err != nil {
		return err
	}
	for i := 0; i < 10; {
		o, ok := wk.pick()
		if !ok {
			continue
		}
		if err := wk.do(ctx, &o); err != nil {
			problems = append(problems, fmt.Sprintf("write %s after the space was freed: %v", o, err))
			break
		}
		apply(wk.model, o, true)
		wk.acked = append(wk.acked, o)
		i++
	}
	check("after freeing the space")
	wk.admin.Close()

	// A restart keeps everything acknowledged.
	if err := c.stop(); err != nil {
		problems = append(problems, fmt.Sprintf("stopping the controller after the full disk: %v", err))
	}
	c, err = startController(o.gate, dir, addr, logPath)
	if err != nil {
		return fmt.Errorf("restart after freeing the space: %w (and: %v)", err, problems)
	}
	check("after the restart")
	problems = append(problems, integrity(dir)...)
	for _, e := range must(os.ReadDir(dir)) {
		if strings.Contains(e.Name(), ".tmp") {
			problems = append(problems, "temporary file left in the state directory: "+e.Name())
		}
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	log.Printf("state directory after: %s", strings.Join(names, " "))
	fmt.Printf("ENOSPC controller: %d writes acknowledged in all; on the full disk %d failed, the first after %v: %q; cause named in the answer: %v; problems: %d\n",
		len(wk.acked), failed, took.Round(time.Millisecond), failErr.Error(), named, len(problems))
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	log.Printf("ENOSPC: ok")
	return nil
}

func must[T any](v T, err error) T {
	if err != nil {
		log.Fatal(err)
	}
	return v
}
