// Command gate is Gate's one binary: the node daemon (gate up), the
// controller (gate controller), the admin and member command line, and, in
// the appliance image, PID 1. main only dispatches; the work lives in
// packages.
package main

import (
	"os"

	"github.com/gatenet/gate/appliance/cli"
	"github.com/gatenet/gate/appliance/pid1"
)

// version is stamped by the Makefile with -ldflags -X.
var version = "dev"

func main() {
	if pid1.IsInit(os.Args) {
		pid1.Main(version) // never returns
	}
	os.Exit(cli.Main(os.Args[1:], version, os.Stdout, os.Stderr))
}
