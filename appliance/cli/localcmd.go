package cli

import (
	"context"
	"flag"
	"time"

	"github.com/gatenet/gate/services/localapi"
)

// localCmd is the shape the commands that ask the local daemon share: a
// flag set with --socket (and --json where there is something to print),
// a check of the positional arguments, and one call under a timeout.
type localCmd struct {
	fs     *flag.FlagSet
	socket *string
	json   *bool
}

func newLocalCmd(name string, withJSON bool) *localCmd {
	c := &localCmd{fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	c.socket = socketFlag(c.fs)
	if withJSON {
		c.json = c.fs.Bool("json", false, "print JSON")
	}
	return c
}

// args parses the arguments and wants n positional ones, described by
// what in the usage error.
func (c *localCmd) args(args []string, n int, what string) ([]string, error) {
	pos, err := parse(c.fs, args)
	if err != nil {
		return nil, err
	}
	return pos, wantArgs(pos, n, what)
}

// call runs f with a client of the daemon and a context that ends after d.
func (c *localCmd) call(d time.Duration, f func(ctx context.Context, cl *localapi.Client) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return f(ctx, localapi.NewClient(*c.socket))
}

func (c *localCmd) wantJSON() bool { return c.json != nil && *c.json }
