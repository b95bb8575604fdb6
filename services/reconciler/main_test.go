package reconciler

import (
	"os"
	"testing"

	"github.com/gatenet/gate/services/nstest"
)

// TestMain: as root, every test of the package runs inside a network
// namespace of its own (nstest.Main), as make test and CI run them. Not
// root, the tests run in this process: the pure ones (TestPure..., against
// the recording fake of fake_test.go) pass, and every kernel test fails at
// its first line, kernelTest. Nothing skips.
func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		os.Exit(m.Run())
	}
	nstest.Main(m)
}

// kernelTest is the first line of every test that needs the real kernel:
// it fails the test unless it runs inside the namespace TestMain made.
func kernelTest(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("a kernel test: it needs root (network namespaces, netlink, nftables), as make test runs it; go test -run Pure runs the tests that do not")
	}
	nstest.Current(t)
}
