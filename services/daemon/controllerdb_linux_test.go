package daemon

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql's "pgx"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/pgtest"
)

// dbSecret is the password the tests put in controller.db: the server
// trusts local connections and never asks for it, and it must appear in
// no log line and no status.
const dbSecret = "Pg5ecretInTheURL"

// withPassword puts dbSecret into a pgtest URL's user part.
func withPassword(t *testing.T, dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), dbSecret)
	return u.String()
}

// TestControllerHerePostgres: controller.db in the document reaches the
// controller the daemon runs: its data is in that PostgreSQL database,
// not in SQLite in the state directory, and the database's password is
// in no log line and not in the status.
func TestControllerHerePostgres(t *testing.T) {
	dsn := withPassword(t, pgtest.NewDB(t))
	p := newPreseeded(t, "ctl-pg", "version: 1\ncontroller: {listen: \"127.0.0.1:18462\", db: \""+dsn+"\"}\n")
	h, logs, dir := p.h, p.logs, p.dir
	defer p.run("")()
	ctlDir := filepath.Join(dir, "node", "controller")
	var admin *control.Client
	h.eventually("controller answers", func() error {
		b, err := os.ReadFile(filepath.Join(ctlDir, "controller.url"))
		if err != nil {
			return err
		}
		js, err := control.ParseControllerAddress(strings.TrimSpace(string(b)))
		if err != nil {
			return err
		}
		tok, err := os.ReadFile(filepath.Join(ctlDir, "admin-token"))
		if err != nil {
			return err
		}
		c, err := control.NewClient(js.Controller, js.Pin, nil, strings.TrimSpace(string(tok)))
		if err != nil {
			return err
		}
		if _, err := c.Networks(context.Background()); err != nil {
			c.Close()
			return err
		}
		admin = c
		return nil
	})
	defer admin.Close()
	n, err := admin.CreateNetwork(context.Background(), control.CreateNetworkRequest{Name: "on-pg", CIDR: netip.MustParsePrefix("10.211.0.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	// The network is in PostgreSQL; there is no SQLite database.
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var name string
	if err := db.QueryRow(`SELECT name FROM networks WHERE id = $1`, n.ID).Scan(&name); err != nil || name != "on-pg" {
		t.Errorf("network %s in PostgreSQL: %q, %v", n.ID, name, err)
	}
	if _, err := os.Stat(filepath.Join(ctlDir, "controller.db")); !os.IsNotExist(err) {
		t.Errorf("controller.db in the state directory: %v", err)
	}
	if out, _ := exec.Command("nft", "list", "table", "inet", "gate").CombinedOutput(); !strings.Contains(string(out), "18462") {
		t.Errorf("strict firewall does not allow tcp/18462:\n%s", out)
	}
	if logs.count("database postgres://postgres:xxxxx@/") != 1 {
		t.Errorf("no log line names the database, redacted")
	}
	st, err := h.local().Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(st)
	if strings.Contains(string(js), dbSecret) {
		t.Errorf("password in the status: %s", js)
	}
	if n := logs.count(dbSecret); n != 0 {
		t.Errorf("password in %d log lines", n)
	}
}

// TestControllerDBDown: a controller whose PostgreSQL does not answer is
// tried again, each failure logged naming the database without its
// password; it makes no SQLite database meanwhile, and opens no port.
func TestControllerDBDown(t *testing.T) {
	p := newPreseeded(t, "ctl-pg-down", "version: 1\ncontroller: {listen: \"127.0.0.1:18463\", db: \"postgres://gate:"+dbSecret+"@127.0.0.1:1/gate?sslmode=disable\"}\n")
	h, logs, dir := p.h, p.logs, p.dir
	stop := p.run("")
	h.eventually("tried twice", func() error {
		if n := logs.count("postgres://gate:xxxxx@127.0.0.1:1/gate?sslmode=disable"); n < 2 {
			return fmt.Errorf("%d log lines name the database", n)
		}
		return nil
	})
	if out, _ := exec.Command("nft", "list", "table", "inet", "gate").CombinedOutput(); strings.Contains(string(out), "18463") {
		t.Errorf("tcp/18463 open without a controller:\n%s", out)
	}
	start := time.Now()
	stop()
	if time.Since(start) > 5*time.Second {
		t.Errorf("stopping took %v: the retries did not end with the daemon", time.Since(start))
	}
	if n := logs.count(dbSecret); n != 0 {
		t.Errorf("password in %d log lines", n)
	}
	if n := logs.count("controller running here"); n != 0 {
		t.Errorf("controller started without its database")
	}
	if _, err := os.Stat(filepath.Join(dir, "node", "controller", "controller.db")); !os.IsNotExist(err) {
		t.Errorf("controller.db in the state directory: %v", err)
	}
}
