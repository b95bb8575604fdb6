// Command gate is Gate's one binary: the node daemon (gate up), the
// controller (gate controller), the admin and member command line, and, in
// the appliance image, PID 1. main only dispatches; the work lives in
// packages.
package main

import (
	"os"

	"github.com/gatenet/gate/appliance/cli"
)

// version is stamped by the Makefile with -ldflags -X.
var version = "dev"

func main() {
	os.Exit(cli.Main(os.Args[1:], version, os.Stdout, os.Stderr))
}
