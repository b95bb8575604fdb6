// Package moddep reads depmod's modules.dep and orders kernel modules so
// that each comes after its dependencies. It is shared by the initramfs
// builder (which takes the closure of the modules Gate needs and writes a
// trimmed modules.dep) and by PID 1 (which loads that file in order). Pure:
// it never touches the kernel or the disk.
package moddep

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strings"
)

// Graph is modules.dep: each module file (relative to the kernel's
// module directory) and the files it needs loaded first. files keeps the
// order of the file, so that loading is deterministic.
type Graph struct {
	Deps  map[string][]string
	Files []string
}

// Parse reads depmod's modules.dep: one "file: dep dep ..." line
// per module.
func Parse(r io.Reader) (Graph, error) {
	g := Graph{Deps: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		file, rest, ok := strings.Cut(line, ":")
		file = strings.TrimSpace(file)
		if !ok || file == "" {
			return Graph{}, fmt.Errorf("modules.dep line %d: want \"file: deps\", got %q", n, line)
		}
		if _, dup := g.Deps[file]; dup {
			return Graph{}, fmt.Errorf("modules.dep line %d: %s listed twice", n, file)
		}
		g.Deps[file] = strings.Fields(rest)
		g.Files = append(g.Files, file)
	}
	if err := sc.Err(); err != nil {
		return Graph{}, fmt.Errorf("reading modules.dep: %w", err)
	}
	return g, nil
}

// Order returns want (all modules when want is empty) and their
// dependencies, every module after all of its dependencies, each once.
// It fails on a dependency that modules.dep does not list and on cycles,
// which depmod never writes but a hand-trimmed file could.
func (g Graph) Order(want []string) ([]string, error) {
	if len(want) == 0 {
		want = g.Files
	}
	const (
		visiting = 1
		done     = 2
	)
	mark := map[string]int{}
	var out []string
	var visit func(file string, from []string) error
	visit = func(file string, from []string) error {
		switch mark[file] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("module dependency cycle: %s -> %s", strings.Join(from, " -> "), file)
		}
		deps, ok := g.Deps[file]
		if !ok {
			if len(from) == 0 {
				return fmt.Errorf("module %s is not in modules.dep", file)
			}
			return fmt.Errorf("module %s needs %s, which is not in modules.dep", from[len(from)-1], file)
		}
		mark[file] = visiting
		// modprobe loads a module's list from the end: the last entry is
		// the deepest dependency. Visiting in that order keeps our order
		// the same as modprobe's where the graph leaves a choice.
		for i := len(deps) - 1; i >= 0; i-- {
			if err := visit(deps[i], append(from, file)); err != nil {
				return err
			}
		}
		mark[file] = done
		out = append(out, file)
		return nil
	}
	for _, f := range want {
		if err := visit(f, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Name is the kernel's name for a module file: the base name without
// .ko and compression suffix, with dashes as underscores
// (kernel/drivers/char/hw_random/virtio-rng.ko is virtio_rng).
func Name(file string) string {
	base := path.Base(file)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		base = strings.TrimSuffix(base, ext)
	}
	return strings.ReplaceAll(strings.TrimSuffix(base, ".ko"), "-", "_")
}

// Find returns the file of the module called name ("virtio_net",
// "virtio-rng" and "virtio_rng" alike).
func (g Graph) Find(name string) (string, bool) {
	want := strings.ReplaceAll(name, "-", "_")
	for _, f := range g.Files {
		if Name(f) == want {
			return f, true
		}
	}
	return "", false
}

// Write writes the lines of modules.dep for files, in the given order.
func (g Graph) Write(w io.Writer, files []string) error {
	for _, f := range files {
		deps, ok := g.Deps[f]
		if !ok {
			return fmt.Errorf("module %s is not in modules.dep", f)
		}
		line := f + ":"
		if len(deps) > 0 {
			line += " " + strings.Join(deps, " ")
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}
