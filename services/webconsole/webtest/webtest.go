// Package webtest drives the web console in a real browser, Debian's
// Chromium headless, through the DevTools protocol (chromedp), for the
// console's tests and the scenario scripts. Each Browser is its own
// browser process, so two of them are two people: their cookies are
// their own.
//
// Why a real browser: what the console promises (a session cookie the
// browser keeps and sends, forms that carry their anti-forgery token,
// pages that follow changes live, keyboard use, a layout that holds at
// phone width) is only shown by a browser running its script and laying
// out its pages.
package webtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// Timeout bounds one step (a page load, waiting for an element).
const Timeout = 30 * time.Second

// ChromiumPath is the browser to run: $CHROMIUM, else Debian's. A missing
// browser is an error, never a reason to skip: make deps installs it.
func ChromiumPath() (string, error) {
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium: install Debian's package (apt-get install -y chromium; make deps does)")
}

// Browser is one headless Chromium with one tab.
type Browser struct {
	Base   string // the console's URL, e.g. http://127.0.0.1:8444
	ctx    context.Context
	cancel func()
}

// Start starts a browser for the console at base, its window width x
// height.
func Start(base string, width, height int) (*Browser, error) {
	path, err := ChromiumPath()
	if err != nil {
		return nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root, where Chromium's sandbox will not start
		chromedp.WindowSize(width, height),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("lang", "en-US"),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &Browser{Base: strings.TrimRight(base, "/"), ctx: ctx, cancel: func() { cancel(); acancel() }}
	// The first run starts the browser; it lives as long as ctx.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height))); err != nil {
		b.cancel()
		return nil, fmt.Errorf("starting %s: %w", path, err)
	}
	return b, nil
}

// Close stops the browser.
func (b *Browser) Close() { b.cancel() }

// Do runs steps in the tab, each bounded by Timeout.
func (b *Browser) Do(steps ...chromedp.Action[chromedp.Void]) error {
	for _, s := range steps {
		ctx, cancel := context.WithTimeout(b.ctx, Timeout)
		_, err := chromedp.Run(ctx, s)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// Run runs one action that gives a value.
func Run[T any](b *Browser, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, Timeout)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// Open loads path (e.g. /networks) and waits for its main region.
func (b *Browser) Open(path string) error {
	return b.Do(chromedp.Navigate(b.Base+path), chromedp.WaitReady(chromedp.CSS("main")))
}

// SignIn signs in with an admin token, through the sign-in page. A
// refusal is an error carrying what the page says.
func (b *Browser) SignIn(token string) error {
	err := b.Do(
		chromedp.Navigate(b.Base+"/signin"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Submit(chromedp.ID("token")),
	)
	if err != nil {
		return err
	}
	if err := b.WaitFor(`document.querySelector('header .who') || document.querySelector('main .error')`, Timeout); err != nil {
		return err
	}
	if msg, _ := Eval[string](b, `(document.querySelector('main .error') || {}).textContent || ''`); msg != "" {
		return fmt.Errorf("sign-in refused: %s", msg)
	}
	return nil
}

// Fill replaces the value of the field css with value, as typed.
func (b *Browser) Fill(css, value string) error {
	sel, _ := json.Marshal(css)
	if err := b.Do(chromedp.WaitVisible(chromedp.CSS(css))); err != nil {
		return err
	}
	if _, err := Eval[bool](b, "(document.querySelector("+string(sel)+").value = '') === ''"); err != nil {
		return err
	}
	return b.Do(chromedp.SendKeys(chromedp.CSS(css), value))
}

// Press clicks the button css and waits for the page it leads to (a
// marker set on this page is gone there).
func (b *Browser) Press(css string) error {
	if _, err := Eval[bool](b, "window.__webtestOld = true"); err != nil {
		return err
	}
	if err := b.Do(chromedp.Click(chromedp.CSS(css))); err != nil {
		return err
	}
	return b.WaitFor(`!window.__webtestOld && document.readyState === 'complete'`, Timeout)
}

// Text is the text of the first element css, waiting for it to appear.
func (b *Browser) Text(css string) (string, error) {
	return Run(b, chromedp.Text(chromedp.CSS(css)))
}

// Eval evaluates a JavaScript expression in the page.
func Eval[T any](b *Browser, js string) (T, error) {
	return Run(b, chromedp.Evaluate[T](js))
}

// WaitFor waits until the JavaScript expression cond is true, up to max.
func (b *Browser) WaitFor(cond string, max time.Duration) error {
	deadline := time.Now().Add(max)
	for {
		ok, err := Eval[bool](b, "!!("+cond+")")
		if err == nil && ok {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("still false after %s: %s", max, cond)
			}
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Screenshot writes the viewport as a PNG file.
func (b *Browser) Screenshot(path string) error {
	png, err := Run(b, chromedp.CaptureScreenshot())
	if err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}

// Resize sets the viewport, as a window of that size would have it.
func (b *Browser) Resize(width, height int) error {
	return b.Do(chromedp.EmulateViewport(int64(width), int64(height)))
}
