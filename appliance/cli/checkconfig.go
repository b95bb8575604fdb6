package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/gatenet/gate/services/cloud"
	"github.com/gatenet/gate/services/intent"
	"github.com/gatenet/gate/services/nodeconfig"
)

// runCheckConfig checks user-data (or a preseed) before it reaches a
// machine: the same parse and the same Assemble the appliance runs at boot,
// so what passes here is what the node accepts, and what fails names the
// key and line.
func runCheckConfig(e *env, args []string) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: gate check-config FILE|-\n\nChecks user-data (a #cloud-config with a gate: key, a Gate document, or MIME\nmultipart) or a preseed as the appliance would at boot, and prints the\ndocument it makes (join tokens redacted).")
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return errors.New("want one file (or - for standard input)")
	}
	name := pos[0]
	var data []byte
	if name == "-" {
		data, err = io.ReadAll(io.LimitReader(os.Stdin, cloud.MaxUnpacked+1))
		name = "standard input"
	} else {
		data, err = readLimited(name, cloud.MaxUnpacked+1)
	}
	if err != nil {
		return err
	}
	ud, err := cloud.ParseUserData(name, data)
	if err != nil {
		return configProblems(e, err)
	}
	for _, n := range ud.Notes {
		fmt.Fprintf(e.stdout, "note: %s\n", n)
	}
	if ud.Layer == nil {
		fmt.Fprintf(e.stdout, "%s (%s) holds no Gate configuration: a node would boot with its defaults\n", name, ud.Format)
		return nil
	}
	eff, err := intent.Assemble(intent.Layers{Cloud: []*nodeconfig.Layer{ud.Layer}})
	if err != nil {
		return configProblems(e, err)
	}
	for _, w := range eff.Warnings {
		fmt.Fprintf(e.stdout, "warning: %s\n", w)
	}
	fmt.Fprintf(e.stdout, "%s (%s): valid; the document it makes:\n\n", name, ud.Format)
	e.stdout.Write(nodeconfig.Format(eff.Config.Redacted()))
	return nil
}

// configProblems prints a configuration error's issues one per line and
// returns an error that says how many.
func configProblems(e *env, err error) error {
	errs, warns := intent.Issues(err)
	for _, w := range warns {
		fmt.Fprintf(e.stdout, "warning: %s\n", w)
	}
	for _, x := range errs {
		fmt.Fprintf(e.stdout, "error: %s\n", x)
	}
	return fmt.Errorf("invalid (%d errors): a node would refuse it whole and keep its last good configuration", len(errs))
}

// readLimited reads at most max bytes of a file, and says so when it is
// longer.
func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max))
	if err == nil && int64(len(b)) >= max {
		err = fmt.Errorf("%s: larger than %d bytes", path, max-1)
	}
	return b, err
}
