package pid1

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/gatenet/gate/initramfs/moddep"
)

// loadModules loads every module of the initramfs's modules.dep (the
// builder wrote only the closure Gate needs) in dependency order.
//
// u-root's pkg/kmodule does this too, but it loads dependencies from
// parallel goroutines, reads every module into memory for init_module
// even when uncompressed, and treats ENODEV as a failure; here a Xen driver
// on a KVM host (ENODEV) and a built-in or already loaded module (EEXIST)
// are normal, and the initramfs builder decompresses modules so that
// finit_module(2) can read them straight from the file.
func loadModules(logf func(string, ...any)) (loaded int, err error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return 0, fmt.Errorf("uname: %w", err)
	}
	dir := filepath.Join("/lib/modules", unix.ByteSliceToString(u.Release[:]))
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil // a kernel with everything built in
	}
	if err != nil {
		return 0, err
	}
	g, err := moddep.Parse(f)
	f.Close()
	if err != nil {
		return 0, err
	}
	order, err := g.Order(nil)
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, file := range order {
		switch err := finit(filepath.Join(dir, file)); {
		case err == nil:
			loaded++
		case errors.Is(err, unix.EEXIST):
		case errors.Is(err, unix.ENODEV):
			logf("module %s: no such device here", moddep.Name(file))
		default:
			errs = append(errs, fmt.Errorf("loading module %s: %w", moddep.Name(file), err))
		}
	}
	return loaded, errors.Join(errs...)
}

func finit(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		err := unix.FinitModule(int(f.Fd()), "", 0)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
