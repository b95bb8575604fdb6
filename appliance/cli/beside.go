package cli

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/gatenet/gate/services/localapi"
)

// holdBeside asks the gate daemon on this host, if there is one, to keep
// the controller's port open in its firewall while the controller runs
// (localapi.Client.HoldPort): a gateway's strict firewall would otherwise
// drop every member's connection, and nothing would say why. Without a
// daemon it asks again every few seconds, quietly: a controller on a host
// without `gate up` is the common case. A controller that listens on
// loopback only needs nothing opened.
func holdBeside(ctx context.Context, socket, listen string, logf func(string, ...any)) {
	host, portText, err := net.SplitHostPort(listen)
	if err != nil || socket == "" {
		return
	}
	if a, err := netip.ParseAddr(host); err == nil && a.IsLoopback() || host == "localhost" {
		return
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 {
		return
	}
	c := localapi.NewClient(socket)
	said := ""
	for ctx.Err() == nil {
		err := c.HoldPort(ctx, localapi.HoldRequest{Port: uint16(port), For: localapi.HoldForController}, func() {
			logf("the gate daemon on this host (%s) opens tcp/%d in its firewall while this controller runs", socket, port)
			said = ""
		})
		if err != nil && !noDaemon(err) && err.Error() != said {
			logf("asking the gate daemon on this host to open tcp/%d: %v", port, err)
			said = err.Error()
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
}

// noDaemon says whether err means no daemon listens on the socket.
func noDaemon(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED)
}
