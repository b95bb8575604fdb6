// Command webdrive plays an operator in the web console for
// scripts/web-test.sh: the seed scenario's admin steps, all in a real
// browser (headless Chromium), while the script runs the gates in network
// namespaces. The two meet through files in -dir: webdrive writes net (the
// network's ID) and join (the droplet's join string), and waits for the
// gates the script starts to show up on the page, live.
//
//	webdrive -console http://127.0.0.1:8444 -token-file ctl/admin-token -dir out/web
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatenet/gate/services/webconsole/webtest"
)

func main() {
	console := flag.String("console", "http://127.0.0.1:8444", "the web console")
	tokenFile := flag.String("token-file", "", "the controller's admin-token file")
	dir := flag.String("dir", "out/web", "where to meet the script, and the screenshots")
	cidr := flag.String("cidr", "192.168.254.0/24", "the network's addresses")
	gwIP := flag.String("gw-ip", "192.168.254.11", "the gate's static address")
	serve := flag.String("serve", "172.16.0.0/16", "the subnet behind the gate")
	wait := flag.Duration("wait", 2*time.Minute, "how long to wait for each gate")
	flag.Parse()
	if err := run(*console, *tokenFile, *dir, *cidr, *gwIP, *serve, *wait); err != nil {
		log.Fatalf("webdrive: %v", err)
	}
}

func step(what string) { log.Printf("webdrive: %s", what) }

func run(console, tokenFile, dir, cidr, gwIP, serve string, wait time.Duration) error {
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		return err
	}
	b, err := webtest.Start(console, 1280, 800)
	if err != nil {
		return err
	}
	defer b.Close()
	shot := func(name string) error { return b.Screenshot(filepath.Join(dir, name)) }
	check := func(err error, what string) error {
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}

	step("sign in")
	if err := check(b.SignIn(strings.TrimSpace(string(tok))), "sign in"); err != nil {
		return err
	}
	step("create the network")
	for _, e := range []error{b.Open("/networks"), b.Fill("#net-name", "aws-do"), b.Fill("#net-cidr", cidr),
		b.Press("form[action='/networks'] button[type=submit]")} {
		if err := check(e, "create the network"); err != nil {
			return err
		}
	}
	loc, err := webtest.Run(b, chromedp.Location())
	if err != nil {
		return err
	}
	_, id, ok := strings.Cut(loc, "/n/")
	if !ok || len(id) != 16 {
		msg, _ := b.Text("main")
		return fmt.Errorf("after creating the network the page is %s: %s", loc, msg)
	}
	if err := os.WriteFile(filepath.Join(dir, "net"), []byte(id+"\n"), 0o644); err != nil {
		return err
	}

	step("wait for the gate to appear, pending, without reloading")
	if err := b.WaitFor(`document.querySelector('tr.state-pending')`, wait); err != nil {
		return fmt.Errorf("the gate never appeared pending: %w", err)
	}
	if err := shot("network-pending.png"); err != nil {
		return err
	}
	node, err := webtest.Eval[string](b, `document.querySelector('tr.state-pending').dataset.node`)
	if err != nil {
		return err
	}
	row := fmt.Sprintf(`tr[data-node="%s"]`, node)
	step("allow it and give it its static address " + gwIP)
	for _, e := range []error{
		b.Press(row + ` form[action$="/allow"] button`),
		b.Fill("#addr-"+node, gwIP),
		b.WaitFor(fmt.Sprintf(`document.querySelector('#addr-%s').getAttribute('aria-invalid') === 'false'`, node), 10*time.Second),
		b.Press(row + ` form[action$="/address"] button`),
	} {
		if err := check(e, "allow and address"); err != nil {
			return err
		}
	}
	if msg, _ := b.Text(".flash"); !strings.Contains(msg, gwIP) {
		return fmt.Errorf("after setting the address the page says %q", msg)
	}

	step("add the route to " + serve + " through it")
	for _, e := range []error{b.Open("/n/" + id + "/routes"), b.Fill("#dest", serve),
		b.Do(chromedp.SetValue(chromedp.ID("via"), gwIP)), b.Press("form[action$='/routes'] button[type=submit]")} {
		if err := check(e, "add the route"); err != nil {
			return err
		}
	}
	if msg, _ := b.Text(".flash"); !strings.Contains(msg, serve) {
		return fmt.Errorf("after adding the route the page says %q", msg)
	}
	if err := b.WaitFor(`document.querySelector('#routes .badge.allowed')`, 30*time.Second); err != nil {
		return fmt.Errorf("the route's gateway is not shown active: %w", err)
	}
	if err := shot("routes.png"); err != nil {
		return err
	}

	step("make a join token for the droplet")
	for _, e := range []error{b.Open("/n/" + id + "/tokens"), b.Fill("#note", "droplet-1"),
		b.Do(chromedp.Click(chromedp.CSS("input[name=allow]"))), b.Press("form[action$='/tokens'] button[type=submit]")} {
		if err := check(e, "make a token"); err != nil {
			return err
		}
	}
	join, err := webtest.Run(b, chromedp.Value(chromedp.ID("joinstring")))
	if err != nil || !strings.HasPrefix(join, "gate://") {
		return fmt.Errorf("no join string on the page (%q): %v", join, err)
	}
	if err := shot("tokens.png"); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "join"), []byte(join+"\n"), 0o600); err != nil {
		return err
	}

	step("wait for the droplet to appear, allowed and online")
	if err := b.Open("/n/" + id); err != nil {
		return err
	}
	cond := `document.querySelectorAll('#members tr.state-allowed .dot.on').length >= 2`
	if err := b.WaitFor(cond, wait); err != nil {
		return errors.New("the droplet never showed up allowed and online")
	}
	if err := shot("network-joined.png"); err != nil {
		return err
	}
	step("an admin token for a viewer of this network, on the Access page")
	for _, e := range []error{b.Open("/access"), b.Fill("#adm-name", "auditor"),
		b.Do(chromedp.Click(chromedp.CSS(`input[name=network][value="` + id + `"]`))), b.Press("form[action='/access'] button[type=submit]")} {
		if err := check(e, "make an admin token"); err != nil {
			return err
		}
	}
	if secret, err := webtest.Run(b, chromedp.Value(chromedp.ID("admsecret"))); err != nil || !strings.HasPrefix(secret, "gate_admin_") {
		return fmt.Errorf("no admin token on the page (%q): %v", secret, err)
	}
	if err := b.Open("/access"); err != nil {
		return err
	}
	if err := shot("access.png"); err != nil {
		return err
	}
	step("the audit log, and the phone's view")
	if err := b.Open("/audit?network=" + id); err != nil {
		return err
	}
	if err := shot("audit.png"); err != nil {
		return err
	}
	if err := b.Resize(390, 844); err != nil {
		return err
	}
	if err := b.Open("/n/" + id); err != nil {
		return err
	}
	if err := shot("network-phone.png"); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "done"), []byte(id+"\n"), 0o644)
}
