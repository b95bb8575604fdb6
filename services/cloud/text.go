package cloud

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gatenet/gate/services/nodeconfig"
)

// What this package says about untrusted input (notes for the log, error
// messages, values in a Result) ends up in the daemon's log, `gate status`
// and the console. It must not carry the input's control characters or
// terminal escapes, nor grow with it.
const (
	maxNotes   = 32   // notes of one user-data parse, or of one detection
	maxNoteLen = 400  // bytes of one note
	maxShown   = 64   // bytes of an untrusted string quoted in a note or an error
	maxErrLen  = 1000 // bytes of an error message built from untrusted input
)

// show renders an untrusted string for a note or an error message: as it
// is when it is a short, plain token (a cloud-config key such as
// ssh_authorized_keys, a media type, a file name such as setup.sh), and
// otherwise quoted with strconv.QuoteToASCII (every byte outside
// printable ASCII escaped), cut to maxShown bytes.
func show(s string) string {
	if s != "" && len(s) <= maxShown && strings.IndexFunc(s, func(r rune) bool { return !plainRune(r) }) < 0 {
		return s
	}
	if len(s) > maxShown {
		return strconv.QuoteToASCII(cut(s, maxShown)) + "..."
	}
	return strconv.QuoteToASCII(s)
}

func plainRune(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("#!/._-+:@=~", r)
}

// cut returns at most n bytes of s, on a rune boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// clean is the safety net for text that may quote untrusted bytes (a
// library's error message, say): every character that is not printable
// (controls, escapes, bidi overrides, invalid UTF-8) is written as its Go
// escape, and the result is cut to max bytes.
func clean(s string, max int) string {
	if len(s) <= max && isClean(s) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		if b.Len() >= max {
			b.WriteString("...")
			break
		}
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case printable(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}

func printable(r rune) bool { return r == ' ' || r != utf8.RuneError && unicode.IsPrint(r) }

// isClean says whether s is valid UTF-8 of printable characters only.
func isClean(s string) bool {
	for _, r := range s {
		if !printable(r) {
			return false
		}
	}
	return true
}

// cleanError is an error whose message went through clean; errors.As and
// errors.Is still see the error it wraps.
type cleanError struct{ err error }

func (e cleanError) Error() string { return clean(e.err.Error(), maxErrLen) }
func (e cleanError) Unwrap() error { return e.err }

// cleanErr makes err safe to log. A *nodeconfig.Error is cleaned in place
// (its issues' paths and messages can quote the document's keys), so that
// a caller listing its issues one by one gets them clean too.
func cleanErr(err error) error {
	if err == nil {
		return nil
	}
	var ne *nodeconfig.Error
	if errors.As(err, &ne) {
		cleanIssues(ne.Errors)
		cleanIssues(ne.Warnings)
		if ne == err {
			return err
		}
	}
	if isClean(err.Error()) && len(err.Error()) <= maxErrLen {
		return err
	}
	return cleanError{err}
}

func cleanIssues(is []nodeconfig.Issue) {
	for i := range is {
		is[i].Path = clean(is[i].Path, maxNoteLen)
		is[i].Message = clean(is[i].Message, maxNoteLen)
		is[i].Origin = clean(is[i].Origin, maxNoteLen)
	}
}

// notes collects what was ignored or odd, for the log: at most maxNotes of
// them, each clean and at most maxNoteLen bytes. The caller quotes what it
// takes from the input (show); clean here is the safety net.
type notes struct {
	list    []string
	dropped int
}

func (n *notes) addf(format string, args ...any) {
	if len(n.list) >= maxNotes-1 {
		n.dropped++
		return
	}
	n.list = append(n.list, clean(fmt.Sprintf(format, args...), maxNoteLen))
}

// boundNotes passes notes made elsewhere through the same bounds.
func boundNotes(list []string) []string {
	var n notes
	for _, s := range list {
		n.addf("%s", s)
	}
	return n.result()
}

// result is the notes, nil when there are none; when some were left out,
// the last note says how many.
func (n *notes) result() []string {
	if n.dropped == 0 {
		return n.list
	}
	return append(n.list[:len(n.list):len(n.list)], fmt.Sprintf("%d more notes left out", n.dropped))
}

// mark and reset undo the notes added since mark.
func (n *notes) mark() [2]int   { return [2]int{len(n.list), n.dropped} }
func (n *notes) reset(m [2]int) { n.list, n.dropped = n.list[:m[0]], m[1] }
