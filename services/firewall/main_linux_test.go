package firewall

import (
	"testing"

	"github.com/gatenet/gate/services/nstest"
)

// TestMain puts every test of the package in a fresh network namespace,
// as root: Apply and Remove must never touch the host's own tables.
func TestMain(m *testing.M) { nstest.Main(m) }
