package localapi

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatenet/gate/services/jsonapi"
)

// TestClientErrors: the daemon's refusal is its message alone (the CLI and
// the console show it as it is), with its status for who wants it; a
// daemon that is not there is named with the socket.
func TestClientErrors(t *testing.T) {
	ctx := context.Background()
	c := NewClient(serve(t, &backend{}))
	err := c.Leave(ctx, "d363b4e9bd3d6aa8")
	if want := "network d363b4e9bd3d6aa8: not found"; err == nil || err.Error() != want {
		t.Errorf("Leave = %v, want %q", err, want)
	}
	var je *jsonapi.Error
	if !errors.As(err, &je) || je.Status != 404 {
		t.Errorf("Leave = %#v, want a *jsonapi.Error with status 404", err)
	}

	sock := filepath.Join(t.TempDir(), "gate.sock")
	_, err = NewClient(sock).Status(ctx)
	if want := "talking to gate daemon at " + sock + " (is `gate up` running?)"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Status without a daemon = %v, want %q...", err, want)
	}
}
