package cloud

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"unicode"

	"github.com/gatenet/gate/services/nodeconfig"
)

// hasControl says whether s holds a control or other non-printing
// character (ESC, newline, a bidi override...) that a log line or a
// terminal must not get from untrusted bytes.
func hasControl(s string) bool {
	for _, r := range s {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) && r != ' ' {
			return true
		}
	}
	return false
}

func gzBytes(b []byte) []byte { return gz(string(b)) }

// mimeOf is a multipart/mixed document with the given boundary and parts
// (each its headers, a blank line, and its body).
func mimeOf(boundary string, parts ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=%q\nMIME-Version: 1.0\n\n", boundary)
	for _, p := range parts {
		b.WriteString("--" + boundary + "\n" + p + "\n")
	}
	b.WriteString("--" + boundary + "--\n")
	return b.String()
}

// gzipBomb is a small user-data that unpacks without end on a parser with
// per-level limits only: gzip of a multipart whose many parts are each a
// base64 gzip of almost 1 MiB, so that every level stays under the
// per-document limit while the whole grows as parts x levels.
func gzipBomb(parts int) []byte {
	inner := gzBytes(append([]byte("#cloud-config\n#"), bytes.Repeat([]byte{' '}, nodeconfig.MaxSize-32)...))
	part := "Content-Type: text/cloud-config\nContent-Transfer-Encoding: base64\n\n" + base64.StdEncoding.EncodeToString(inner)
	ps := make([]string, parts)
	for i := range ps {
		ps[i] = part
	}
	return gzBytes([]byte(mimeOf("b", ps...)))
}

// nestedBomb nests text/plain parts three multipart levels deep (as deep
// as a per-level depth check allows), width copies at each level, each
// level gzipped and base64-encoded: the leaves, each almost 1 MiB, number
// width^3, from a user-data of a few KB.
func nestedBomb(width int) []byte {
	doc := "#cloud-config\n#" + strings.Repeat(" ", nodeconfig.MaxSize-32) + "\n"
	for i := range 3 {
		enc := base64.StdEncoding.EncodeToString(gz(doc))
		p := "Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n" + enc
		ps := make([]string, width)
		for k := range ps {
			ps[k] = p
		}
		doc = mimeOf(fmt.Sprintf("l%d", i), ps...)
	}
	return gz(doc)
}

// Finding 6: user-data made of nested MIME parts, base64 and gzip, a few
// KB of it, is refused with an error that says why, and the bytes the
// parse produced stay within one budget for the whole parse.
func TestAttackUserDataBombs(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		err  string
	}{
		{"wide gzip", gzipBomb(200), "unpacks to more than"},
		{"nested gzip", nestedBomb(6), "unpacks to more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Logf("%d bytes of user-data", len(tc.data))
			if len(tc.data) > 64<<10 {
				t.Fatalf("the bomb is %d bytes; it should be small", len(tc.data))
			}
			p := &udParse{src: nodeconfig.SourceUserData}
			u, err := p.run("user-data (test)", tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("got %+v, %v; want an error containing %q", u, err, tc.err)
			}
			t.Log(err)
			// What the parse produced, over all its levels, stays within
			// the one budget (read asks for one byte past it to see it is
			// exceeded).
			t.Logf("%d bytes unpacked, %d MIME parts", p.unpacked, p.parts)
			if p.unpacked > MaxUnpacked+1 {
				t.Errorf("%d bytes unpacked; the budget is %d", p.unpacked, MaxUnpacked)
			}
		})
	}
}

// A parse of many parts, or of parts nested deep, is refused by count and
// depth, with errors that name the limit.
func TestAttackUserDataPartsAndDepth(t *testing.T) {
	many := make([]string, 5000)
	for i := range many {
		many[i] = "Content-Type: text/x-shellscript\n\n#!/bin/sh"
	}
	p := &udParse{src: nodeconfig.SourceUserData}
	_, err := p.run("user-data (test)", []byte(mimeOf("b", many...)))
	if want := fmt.Sprintf("user-data (test): more than %d MIME parts", maxParts); err == nil || err.Error() != want {
		t.Errorf("5000 parts: got %v, want %q", err, want)
	}
	if p.parts > maxParts+1 {
		t.Errorf("%d parts read; the limit is %d", p.parts, maxParts)
	}

	// Nested multipart/mixed parts, without gzip or base64.
	doc := "Content-Type: text/cloud-config\n\ngate: {hostname: deep}"
	for i := range 40 {
		b := fmt.Sprintf("n%d", i)
		doc = fmt.Sprintf("Content-Type: multipart/mixed; boundary=%q\n\n--%s\n%s\n--%s--", b, b, doc, b)
	}
	_, err = ParseUserData("user-data (test)", []byte("MIME-Version: 1.0\n"+doc+"\n"))
	if want := fmt.Sprintf("MIME parts nested more than %d deep", maxDepth); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("40 levels: got %v", err)
	}
}

// Notes and errors go to the daemon's log and the console: what they
// quote of the user-data (part file names, media types, cloud-config
// keys, a script's first line) comes out without control characters, and
// there are few of them, each short.
func TestAttackUserDataNotesAreClean(t *testing.T) {
	esc := "\x1b[2J\x1b[31mPWNED\r\n\u202e"
	// YAML's escapes put ESC, CR, LF and U+202E into the key names.
	cc := "#cloud-config\n\"\\e[2J\\e[31mPWNED\\r\\n\\u202e\": 1\n\"k\\e]0;title\\a\": 2\n" + strings.Repeat("x", 1000) + ": 3\ngate: {hostname: ok}\n"
	data := mimeOf("b",
		"Content-Type: text/x-shellscript\nContent-Disposition: attachment; filename*=UTF-8''%1B%5B2J%0Aevil.sh\n\n#!/bin/sh",
		"Content-Type: application/x-"+strings.Repeat("a", 3000)+"\n\nx",
		"Content-Type: text/cloud-config\n\n"+cc,
	)
	u, err := ParseUserData("user-data (test)", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if u.Layer == nil || u.Layer.Config.Hostname != "ok" {
		t.Errorf("layer %+v", u.Layer)
	}
	t.Logf("notes: %q", u.Notes)
	checkNotes(t, u.Notes)

	many := make([]string, 60)
	for i := range many {
		many[i] = fmt.Sprintf("Content-Type: text/x-shellscript\nContent-Disposition: attachment; filename=\"s%d.sh\"\n\n#!/bin/sh", i)
	}
	u, err = ParseUserData("user-data (test)", []byte(mimeOf("b", many...)))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("notes: %q", u.Notes)
	checkNotes(t, u.Notes)

	for _, data := range []string{
		"#!/bin/sh " + esc + "\n",
		"#cloud-boothook" + esc + "\n",
		"Content-Type: text/plain\nX-Evil" + esc + ": 1\n\nx",
		"Content-Type: multipart/mixed; boundary=\"" + esc + "\"\n\n--x",
	} {
		_, err := ParseUserData("user-data (test)", []byte(data))
		if err == nil {
			t.Errorf("%q: no error", data)
			continue
		}
		if hasControl(err.Error()) {
			t.Errorf("error with control characters: %q", err.Error())
		}
	}
}

func checkNotes(t *testing.T, notes []string) {
	t.Helper()
	if len(notes) > maxNotes {
		t.Errorf("%d notes; at most %d", len(notes), maxNotes)
	}
	for _, n := range notes {
		if hasControl(n) {
			t.Errorf("note with control characters: %q", n)
		}
		if len(n) > maxNoteLen {
			t.Errorf("note of %d bytes: %.80q...", len(n), n)
		}
	}
}

// checkResult: nothing a hostile source gave comes out of Detect with
// control characters, or unbounded.
func checkResult(t *testing.T, r *Result, err error) {
	t.Helper()
	if r == nil {
		t.Fatal("no result")
	}
	all := []string{r.Where, r.InstanceID, r.Hostname, r.Region}
	all = append(all, r.PublicKeys...)
	all = append(all, r.Notes...)
	for _, n := range r.NICs {
		all = append(all, n.MAC, n.Role)
	}
	for name := range r.NetworkConfig {
		all = append(all, name)
	}
	if err != nil {
		all = append(all, err.Error())
		if len(err.Error()) > maxErrLen+16 {
			t.Errorf("error of %d bytes", len(err.Error()))
		}
	}
	for _, s := range all {
		if hasControl(s) {
			t.Errorf("control characters in %q", s)
		}
	}
	if r.Hostname != "" && checkHostname(r.Hostname) != nil {
		t.Errorf("hostname %q is not a DNS name", r.Hostname)
	}
	if len(r.Notes) > maxNotes || len(r.NICs) > maxNICs || len(r.DNS) > maxDNS || len(r.PublicKeys) > maxKeys {
		t.Errorf("%d notes, %d NICs, %d DNS servers, %d keys", len(r.Notes), len(r.NICs), len(r.DNS), len(r.PublicKeys))
	}
	for _, k := range r.PublicKeys {
		if len(k) > maxKeyLen {
			t.Errorf("key of %d bytes", len(k))
		}
	}
	if len(r.InstanceID) > maxInstanceID {
		t.Errorf("instance ID of %d bytes", len(r.InstanceID))
	}
}
