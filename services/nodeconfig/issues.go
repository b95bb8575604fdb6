package nodeconfig

import (
	"fmt"
	"strings"
)

// Issue is one finding about a document: an error or a warning.
type Issue struct {
	// Path is the key path: "networks[0].gateway.serve[1]"; "" for the
	// whole document. A key that is not a plain identifier is quoted
	// (strconv.QuoteToASCII): interfaces."eth0.100".address.
	Path    string
	Message string // what is wrong, and why
	Origin  string // the layer it was written in ("user-data (DigitalOcean)"), when known
	Line    int    // line in that layer, when known
}

// String renders the issue as operators read it, in printable ASCII
// (keys and values from the document are quoted where they are put in
// Path and Message; any other byte is escaped here):
//
//	interfaces.eth0.address: "10.0.0.300/24" is not a CIDR (user-data, line 7)
func (i Issue) String() string {
	var b strings.Builder
	if i.Path != "" {
		b.WriteString(escape(i.Path))
		b.WriteString(": ")
	}
	b.WriteString(escape(i.Message))
	switch {
	case i.Origin != "" && i.Line > 0:
		fmt.Fprintf(&b, " (%s, line %d)", escape(i.Origin), i.Line)
	case i.Origin != "":
		fmt.Fprintf(&b, " (%s)", escape(i.Origin))
	case i.Line > 0:
		fmt.Fprintf(&b, " (line %d)", i.Line)
	}
	return b.String()
}

// Error is an invalid document or merge: every error found, and the
// warnings beside them. Nothing of an invalid document may be applied.
type Error struct {
	Source   string  // what was being read or merged, e.g. "user-data (DigitalOcean)"
	Errors   []Issue // at least one
	Warnings []Issue
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Errors))
	for i, is := range e.Errors {
		lines[i] = is.String()
	}
	what := "configuration"
	if e.Source != "" {
		what = escape(e.Source)
	}
	if len(lines) == 1 {
		return fmt.Sprintf("invalid %s: %s", what, lines[0])
	}
	return fmt.Sprintf("invalid %s: %d errors: %s", what, len(lines), strings.Join(lines, "; "))
}

// maxIssues bounds what one document can produce, so that a hostile input
// cannot make the report itself huge.
const maxIssues = 100

type issues struct {
	errs, warns []Issue
}

func (s *issues) errorf(path string, line int, format string, args ...any) {
	if len(s.errs) < maxIssues {
		s.errs = append(s.errs, Issue{Path: escape(path), Line: line, Message: escape(fmt.Sprintf(format, args...))})
	}
}

func (s *issues) warnf(path string, line int, format string, args ...any) {
	if len(s.warns) < maxIssues {
		s.warns = append(s.warns, Issue{Path: escape(path), Line: line, Message: escape(fmt.Sprintf(format, args...))})
	}
}

func (s *issues) err(source string) error {
	if len(s.errs) == 0 {
		return nil
	}
	return &Error{Source: source, Errors: s.errs, Warnings: s.warns}
}
