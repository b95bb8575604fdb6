package tui

import (
	"context"
	"time"

	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/logring"
)

// API is the part of the daemon's local API the console uses;
// *localapi.Client implements it.
type API interface {
	Watch(ctx context.Context, since uint64, wait time.Duration) (localapi.Snapshot, error)
	Logs(ctx context.Context, since uint64, wait time.Duration) ([]logring.Line, error)
	Join(ctx context.Context, r localapi.JoinRequest) (localapi.Network, error)
	Leave(ctx context.Context, network string) error
	SetInterface(ctx context.Context, name string, r localapi.SetInterfaceRequest) (localapi.Pending, error)
	Confirm(ctx context.Context) error
	Power(ctx context.Context, action string) error
}

var _ API = (*localapi.Client)(nil)
