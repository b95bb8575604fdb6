package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatenet/gate/services/control"
)

// member is one simulated member: its own identity and TLS connection (an
// HTTP/2 transport of its own, as a real agent has), a join, then
// long-polls, tracking its revision and which peers it has.
type member struct {
	idx      int
	node     string
	hc       *http.Client
	base     string // https://addr/v1/networks/ID
	wgKey    string
	endpoint netip.AddrPort

	rev   atomic.Uint64
	peers []uint64 // bitset over member indexes; owned by the member's goroutine
	npeer atomic.Int64

	mu      sync.Mutex
	cancel  context.CancelFunc // the long-poll under way
	newEp   netip.AddrPort     // to report on the next sync
	reports chan struct{}
}

// fleet is all simulated members of one run.
type fleet struct {
	ms     []*member
	byNode map[string]int
	delta  bool // ask for deltas (?delta=1), as the current agent does
	errors atomic.Int64
	bytes  atomic.Int64 // answer body bytes received, all calls
	calls  atomic.Int64 // answers received
	phase  atomic.Pointer[phase]
}

// phase collects the deliveries of one change: the first answer each
// member gets past revision base.
type phase struct {
	base    uint64
	start   time.Time
	skip    int // the member that made the change, if one did
	arrived []atomic.Int64
	bytes   atomic.Int64
	deltas  atomic.Int64
	got     atomic.Int64
	ok      atomic.Int64 // deliveries that carried what the change made
	check   func(body []byte) bool
}

func newMember(idx int, addr, pin, netID string) (*member, error) {
	id, err := control.NewIdentity()
	if err != nil {
		return nil, err
	}
	cfg, err := control.ClientTLS(pin, &id)
	if err != nil {
		return nil, err
	}
	var k [32]byte
	rand.Read(k[:])
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 1,
		TLSHandshakeTimeout: 60 * time.Second, IdleConnTimeout: 10 * time.Minute}
	return &member{
		idx:      idx,
		node:     id.NodeID(),
		hc:       &http.Client{Transport: tr},
		base:     "https://" + addr + "/v1/networks/" + netID,
		wgKey:    base64.StdEncoding.EncodeToString(k[:]),
		endpoint: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(idx >> 8), byte(idx)}), 51820),
		reports:  make(chan struct{}, 1),
	}, nil
}

var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// post sends one member call and hands the answer's body to use.
func (f *fleet) post(ctx context.Context, m *member, path string, in any, use func([]byte)) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	buf := bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufs.Put(buf)
	if _, err := io.Copy(buf, resp.Body); err != nil {
		return err
	}
	f.bytes.Add(int64(buf.Len()))
	f.calls.Add(1)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d: %.200s", path, resp.StatusCode, buf.Bytes())
	}
	use(buf.Bytes())
	return nil
}

// header is what the bench reads of an answer: everything but the peers,
// which it only scans for node IDs (decoding 10,000 peers in every member
// would measure the bench, not the controller).
type header struct {
	Status       string          `json:"status"`
	Revision     uint64          `json:"revision"`
	Delta        bool            `json:"delta"`
	RemovedPeers []string        `json:"removed_peers"`
	Routes       []control.Route `json:"routes"`
}

var peersKey = []byte(`,"peers":[`)
var nodeKey = []byte(`"node_id":"`)

// parse reads the header and the node IDs of the peers of an answer. The
// controller puts the peers last (and the key cannot occur inside a JSON
// string, where the quotes are escaped); anything else is decoded in full.
// The node IDs are handed over as slices of body, not as strings: an
// allocation per peer of every answer (members² in a storm) was a good
// part of the bench's own CPU time, which the controller shares.
func parse(body []byte, peer func(node []byte)) (header, error) {
	var h header
	i := bytes.Index(body, peersKey)
	if i < 0 {
		var mc control.MemberConfig
		if err := json.Unmarshal(body, &mc); err != nil {
			return h, err
		}
		for _, p := range mc.Peers {
			peer([]byte(p.NodeID))
		}
		return header{mc.Status, mc.Revision, mc.Delta, mc.RemovedPeers, mc.Routes}, nil
	}
	if err := json.Unmarshal(append(body[:i:i], '}'), &h); err != nil {
		return h, fmt.Errorf("answer header: %w", err)
	}
	rest := body[i+len(peersKey):]
	for {
		j := bytes.Index(rest, nodeKey)
		if j < 0 || len(rest) < j+len(nodeKey)+10 {
			break
		}
		rest = rest[j+len(nodeKey):]
		peer(rest[:10])
		rest = rest[10:]
	}
	return h, nil
}

// apply takes an answer into the member's state.
func (f *fleet) apply(m *member, body []byte) (header, error) {
	var fresh []int
	h, err := parse(body, func(node []byte) {
		if i, ok := f.byNode[string(node)]; ok { // no allocation
			fresh = append(fresh, i)
		}
	})
	if err != nil {
		return h, err
	}
	if m.peers == nil {
		m.peers = make([]uint64, (len(f.ms)+63)/64)
	}
	if !h.Delta {
		clear(m.peers)
	}
	for _, node := range h.RemovedPeers {
		if i, ok := f.byNode[node]; ok {
			m.peers[i/64] &^= 1 << (i % 64)
		}
	}
	for _, i := range fresh {
		m.peers[i/64] |= 1 << (i % 64)
	}
	n := 0
	for _, w := range m.peers {
		n += bits.OnesCount64(w)
	}
	m.npeer.Store(int64(n))
	m.rev.Store(h.Revision)
	return h, nil
}

func (f *fleet) join(ctx context.Context, m *member) error {
	req := control.JoinRequest{PublicKey: m.wgKey, Hostname: fmt.Sprintf("sim-%05d", m.idx), Version: "ctlbench",
		ListenPort: 51820, Endpoints: []netip.AddrPort{m.endpoint}}
	var herr error
	err := f.post(ctx, m, "/join", req, func(b []byte) {
		var h header
		if h, herr = f.apply(m, b); herr == nil && h.Status != control.StatusOK {
			herr = fmt.Errorf("member %s: status %s after join", m.node, h.Status)
		}
	})
	return errors.Join(err, herr)
}

// poll holds the member's long-poll until ctx is done.
func (f *fleet) poll(ctx context.Context, m *member, wait time.Duration) {
	path := "/sync"
	if f.delta {
		path += "?delta=1"
	}
	for ctx.Err() == nil {
		m.mu.Lock()
		ep := m.newEp
		pctx, cancel := context.WithCancel(ctx)
		m.cancel = cancel
		m.mu.Unlock()
		req := control.SyncRequest{Since: m.rev.Load(), Wait: control.Duration(wait), PublicKey: m.wgKey,
			Hostname: fmt.Sprintf("sim-%05d", m.idx), Version: "ctlbench", ListenPort: 51820}
		if ep.IsValid() {
			req.Endpoints = []netip.AddrPort{ep}
		}
		err := f.post(pctx, m, path, req, func(b []byte) {
			h, err := f.apply(m, b)
			if err != nil {
				f.errors.Add(1)
				return
			}
			if p := f.phase.Load(); p != nil && h.Revision > p.base && m.idx != p.skip &&
				p.arrived[m.idx].CompareAndSwap(0, int64(time.Since(p.start))) {
				p.bytes.Add(int64(len(b)))
				p.got.Add(1)
				if h.Delta {
					p.deltas.Add(1)
				}
				if p.check == nil || p.check(b) {
					p.ok.Add(1)
				}
			}
		})
		cancel()
		if err != nil && ctx.Err() == nil && pctx.Err() == nil {
			f.errors.Add(1)
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// report makes member m tell the controller a new endpoint: its long-poll
// is cut short and the next sync carries it, as an agent's would.
func (m *member) report(ep netip.AddrPort) {
	m.mu.Lock()
	m.newEp = ep
	c := m.cancel
	m.mu.Unlock()
	if c != nil {
		c()
	}
}
