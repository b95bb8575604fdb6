package tui

import (
	"fmt"
	"io"
	"os"

	tea "github.com/charmbracelet/bubbletea"
)

// Run runs the console on in/out until the operator quits. ascii forces
// ASCII borders; otherwise they follow $TERM.
func Run(api API, in io.Reader, out io.Writer, ascii bool) error {
	if !ascii {
		ascii = asciiTerm(os.Getenv("TERM"))
	}
	p := tea.NewProgram(New(api, Options{ASCII: ascii}), tea.WithInput(in), tea.WithOutput(out), tea.WithAltScreen())
	if _, err := p.Run(); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	return nil
}
