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
	replica  int // the controller replica it joins and long-polls (0: the first)
	node     string
	hc       *http.Client
	base     string // https://addr/v1/networks/ID
	wgKey    string
	endpoint netip.AddrPort

	rev   atomic.Uint64
	peers []uint64 // bitset over member indexes; owned by the member's goroutine
	npeer atomic.Int64

	token string // a join token, when the run tags members

	mu      sync.Mutex
	cancel  context.CancelFunc // the long-poll under way
	newEp   netip.AddrPort     // to report on the next sync
	reports chan struct{}
}

// fleet is all simulated members of one run.
type fleet struct {
	ms     []*member
	byNode nodeIndex
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
	only    int // if not 0: only members with an index below it are to get the change (the hubs)
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

// bufs keeps answer buffers between calls. Not a sync.Pool: that one is
// emptied at every GC, and growing a fresh buffer to a full configuration
// (2 MB at 10,000 members), zeroed by the runtime, was a good part of the
// simulated members' CPU, which the controller shares.
var bufs = make(chan *bytes.Buffer, 256)

func getBuf() *bytes.Buffer {
	select {
	case b := <-bufs:
		return b
	default:
		return new(bytes.Buffer)
	}
}

func putBuf(b *bytes.Buffer) {
	select {
	case bufs <- b:
	default:
	}
}

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
	buf := getBuf()
	buf.Reset()
	defer putBuf(buf)
	if resp.ContentLength > 0 {
		buf.Grow(int(resp.ContentLength)) // not grown and copied step by step
	}
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

// parse reads the header of an answer and hands over the node IDs of its
// peers, as slices of body (an allocation per peer of every answer, members²
// in a storm, would be a good part of the bench's own CPU time, which the
// controller shares). The controller puts the peers last (and the key
// cannot occur inside a JSON string, where the quotes are escaped), so they
// are only scanned for node IDs; anything else is decoded in full. head is
// called once, before peer.
func parse(body []byte, head func(header), peer func(node []byte)) error {
	i := bytes.Index(body, peersKey)
	if i < 0 {
		var mc control.MemberConfig
		if err := json.Unmarshal(body, &mc); err != nil {
			return err
		}
		head(headerFrom(mc))
		for _, p := range mc.Peers {
			peer([]byte(p.NodeID))
		}
		return nil
	}
	var h header
	if err := json.Unmarshal(append(body[:i:i], '}'), &h); err != nil {
		return fmt.Errorf("answer header: %w", err)
	}
	head(h)
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
	return nil
}

func headerFrom(mc control.MemberConfig) header {
	return header{mc.Status, mc.Revision, mc.Delta, mc.RemovedPeers, mc.Routes}
}

// apply takes an answer into the member's state.
func (f *fleet) apply(m *member, body []byte) (header, error) {
	if m.peers == nil {
		m.peers = make([]uint64, (len(f.ms)+63)/64)
	}
	var h header
	err := parse(body, func(hd header) {
		h = hd
		if !h.Delta {
			clear(m.peers)
		}
		for _, node := range h.RemovedPeers {
			if i, ok := f.byNode.lookup([]byte(node)); ok {
				m.peers[i/64] &^= 1 << (i % 64)
			}
		}
	}, func(node []byte) {
		if i, ok := f.byNode.lookup(node); ok {
			m.peers[i/64] |= 1 << (i % 64)
		}
	})
	if err != nil {
		return h, err
	}
	n := 0
	for _, w := range m.peers {
		n += bits.OnesCount64(w)
	}
	m.npeer.Store(int64(n))
	m.rev.Store(h.Revision)
	return h, nil
}

// nodeIndex finds a member by its node ID. Every peer of every answer is
// looked up, members² times in a storm, and a map of strings made that a
// good part of the bench's CPU time. A node ID is 10 hex digits of a hash,
// evenly spread, so its value indexes an open-addressed table directly.
type nodeIndex struct {
	keys []uint64 // the ID's value + 1; 0: free
	idx  []int32
}

func newNodeIndex(ids []string) (nodeIndex, error) {
	size := 1
	for size < 4*len(ids) {
		size *= 2
	}
	x := nodeIndex{keys: make([]uint64, size), idx: make([]int32, size)}
	for i, id := range ids {
		k, ok := hexValue([]byte(id))
		if !ok {
			return x, fmt.Errorf("node ID %q is not 10 hex digits", id)
		}
		s := x.slot(k)
		if x.keys[s] != 0 {
			return x, fmt.Errorf("node ID %s twice", id)
		}
		x.keys[s], x.idx[s] = k, int32(i)
	}
	return x, nil
}

// slot is where key k is, or where it would go.
func (x nodeIndex) slot(k uint64) int {
	mask := uint64(len(x.keys) - 1)
	for s := k & mask; ; s = (s + 1) & mask {
		if x.keys[s] == 0 || x.keys[s] == k {
			return int(s)
		}
	}
}

func (x nodeIndex) lookup(id []byte) (int, bool) {
	k, ok := hexValue(id)
	if !ok {
		return 0, false
	}
	s := x.slot(k)
	return int(x.idx[s]), x.keys[s] == k
}

// hexValue is the value of a node ID, plus one (so that no ID is 0).
func hexValue(id []byte) (uint64, bool) {
	if len(id) != 10 {
		return 0, false
	}
	var v uint64
	for _, c := range id {
		switch {
		case '0' <= c && c <= '9':
			v = v<<4 | uint64(c-'0')
		case 'a' <= c && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v + 1, true
}

func (f *fleet) join(ctx context.Context, m *member) error {
	req := control.JoinRequest{PublicKey: m.wgKey, Hostname: fmt.Sprintf("sim-%05d", m.idx), Version: "ctlbench",
		ListenPort: 51820, Endpoints: []netip.AddrPort{m.endpoint}, Token: m.token}
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
			if p := f.phase.Load(); p != nil && h.Revision > p.base && m.idx != p.skip && (p.only == 0 || m.idx < p.only) &&
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
