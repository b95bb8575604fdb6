package nodeconfig

import (
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Everything this package says about a document (Issue.Path,
// Issue.Message, the errors of the Check functions) reaches the daemon's
// log, `gate status` and the console, and the document is untrusted
// (user-data, the kernel command line, the console). So a value or a key
// taken from it is never written raw: show and key quote it with
// strconv.QuoteToASCII (every byte outside printable ASCII escaped) and
// cut it, and Issue.String escapes whatever else slipped through.

// maxShown is the most bytes of one untrusted value or key quoted in a
// message; longer ones are cut and marked "...".
const maxShown = 64

// show renders an untrusted value for a message: quoted, ASCII only, at
// most maxShown bytes of it.
func show(s string) string {
	if len(s) > maxShown {
		n := maxShown
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		return strconv.QuoteToASCII(s[:n]) + "..."
	}
	return strconv.QuoteToASCII(s)
}

// key renders a document key for a key path: as it is when it is a plain
// identifier (letters, digits and -_/+@~<>=, at most maxShown bytes), else
// quoted by show, so that neither a control character nor a '.', '[' or
// quote in a key can forge or garble a path.
func key(k string) string {
	if plainKey(k) {
		return k
	}
	return show(k)
}

func plainKey(k string) bool {
	if k == "" || len(k) > maxShown {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_/+@~<>=", c) >= 0) {
			return false
		}
	}
	return true
}

// dottedKey renders a key that is itself a dotted path (a kernel command
// line parameter such as gate.iface.eth0): as it is when each part is a
// plain identifier, else quoted whole.
func dottedKey(k string) string {
	for _, part := range strings.Split(k, ".") {
		if !plainKey(part) {
			return show(k)
		}
	}
	if len(k) > 4*maxShown {
		return show(k)
	}
	return k
}

// showAddr renders an address for a message: an address with a zone
// (which can hold any bytes) is quoted.
func showAddr(a netip.Addr) string {
	if a.Zone() != "" {
		return show(a.String())
	}
	return a.String()
}

// escape is the safety net of Issue.String: it leaves printable ASCII
// alone and writes every other character as its Go escape (an invalid
// UTF-8 byte as \xNN).
func escape(s string) string {
	if PrintableASCII(s) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(s[i])|0x100, 16)[1:])
		case ' ' <= r && r <= '~':
			b.WriteRune(r)
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}

// PrintableASCII says whether s is printable ASCII only: what a value from
// outside may be to be shown as it is in a message, a log line or a
// terminal (otherwise it is quoted). The local API holds its requests'
// strings to it too.
func PrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
