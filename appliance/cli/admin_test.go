package cli

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatenet/gate/services/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestControllerMigrate: gate controller migrate brings either database
// to the schema version this gate knows, twice without harm, and names a
// database it cannot open without its password.
func TestControllerMigrate(t *testing.T) {
	state := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"sqlite", []string{"controller", "migrate", "--state", state}, 0, "database " + filepath.Join(state, "controller.db") + ": schema version "},
		{"sqlite file", []string{"controller", "--db", filepath.Join(state, "other.db"), "migrate"}, 0, "other.db: schema version "},
		{"postgres", []string{"controller", "migrate", "--state", state, "--db", pgtest.NewDB(t)}, 0, ": schema version "},
		{"no server", []string{"controller", "migrate", "--db", "postgres://gate:s3cret@/gate?host=" + state}, 1, "database postgres://gate:xxxxx@/gate?host="},
		{"not a database", []string{"controller", "migrate", "--db", "mysql://gate:s3cret@db/gate"}, 1, "want a postgres:// or postgresql:// URL"},
		{"what else", []string{"controller", "serve"}, 2, "want no arguments, or migrate"},
	} {
		var versions []string
		for range 2 {
			var out, errb bytes.Buffer
			code := Main(tc.args, "test", &out, &errb)
			both := out.String() + errb.String()
			if code != tc.code || !strings.Contains(both, tc.out) || strings.Contains(both, "s3cret") {
				t.Errorf("%s: gate %q: exit %d, %q; want exit %d and %q, no password", tc.name, tc.args, code, both, tc.code, tc.out)
			}
			if code == 0 {
				var v int
				if _, err := fmt.Sscanf(out.String()[strings.LastIndex(out.String(), "version ")+len("version "):], "%d", &v); err != nil || v < 7 {
					t.Errorf("%s: %q: no schema version", tc.name, out.String())
				}
				versions = append(versions, out.String())
			}
		}
		if len(versions) == 2 && versions[0] != versions[1] {
			t.Errorf("%s: migrating again changed the answer: %q, then %q", tc.name, versions[0], versions[1])
		}
	}
}
