package tui

import (
	"strings"

	"github.com/charmbracelet/lipgloss"
)

// styles are the console's looks. Colour degrades by itself (lipgloss asks
// the terminal what it can do); box-drawing characters do not, so a serial
// console with TERM=vt100 or linux gets ASCII borders.
type styles struct {
	ascii                  bool
	title, dim, ok, warn   lipgloss.Style
	bad, selected, key     lipgloss.Style
	box                    lipgloss.Style
	helpKey, helpDesc, bar lipgloss.Style
}

func newStyles(ascii bool) styles {
	border := lipgloss.RoundedBorder()
	if ascii {
		border = lipgloss.ASCIIBorder()
	}
	return styles{
		ascii:    ascii,
		title:    lipgloss.NewStyle().Bold(true),
		dim:      lipgloss.NewStyle().Faint(true),
		ok:       lipgloss.NewStyle().Foreground(lipgloss.Color("2")).Bold(true),
		warn:     lipgloss.NewStyle().Foreground(lipgloss.Color("3")).Bold(true),
		bad:      lipgloss.NewStyle().Foreground(lipgloss.Color("1")).Bold(true),
		selected: lipgloss.NewStyle().Reverse(true),
		key:      lipgloss.NewStyle().Bold(true),
		box:      lipgloss.NewStyle().Border(border).Padding(0, 1),
		helpKey:  lipgloss.NewStyle().Bold(true),
		helpDesc: lipgloss.NewStyle().Faint(true),
		bar:      lipgloss.NewStyle().Reverse(true),
	}
}

// asciiTerm reports whether a terminal type is known to lack box-drawing
// characters or to draw them unreliably.
func asciiTerm(term string) bool {
	switch strings.ToLower(term) {
	case "", "dumb", "vt100", "vt102", "vt220", "linux", "ansi":
		return true
	}
	return false
}

// status renders a network status with its colour.
func (s styles) status(st string) string {
	switch st {
	case "OK":
		return s.ok.Render(st)
	case "REQUESTING_CONFIGURATION":
		return s.warn.Render(st)
	case "":
		return ""
	}
	return s.bad.Render(st)
}

// fit cuts every line of s to width cells, so a narrow terminal never
// wraps (a wrapped line breaks the layout of a full-screen program).
func fit(s string, width int) string {
	if width <= 0 {
		return s
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if lipgloss.Width(l) > width {
			lines[i] = truncate(l, width)
		}
	}
	return strings.Join(lines, "\n")
}

func truncate(s string, width int) string {
	return lipgloss.NewStyle().MaxWidth(width).Render(s)
}

// wrap breaks s into lines of at most width cells (a log line is worth
// reading whole on an 80-column serial console).
func wrap(s string, width int) string {
	if width <= 0 || lipgloss.Width(s) <= width {
		return s
	}
	return lipgloss.NewStyle().Width(width).Render(s)
}
