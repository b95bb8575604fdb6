package pid1

import "testing"

func TestSessionTTY(t *testing.T) {
	tests := []struct {
		console, dev, term string
		serial             bool
	}{
		{"tty0", "/dev/tty1", "linux", false},
		{"tty2", "/dev/tty2", "linux", false},
		{"ttyS0", "/dev/ttyS0", "vt100", true},
		{"hvc0", "", "", false},
	}
	for _, tt := range tests {
		dev, term, serial := sessionTTY(tt.console)
		if dev != tt.dev || term != tt.term || serial != tt.serial {
			t.Errorf("sessionTTY(%q) = %q %q %v", tt.console, dev, term, serial)
		}
	}
}
