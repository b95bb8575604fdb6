package controller

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gatenet/gate/services/control"
)

// The /v1 API, as listed in services/control/client.go. Handlers decode
// and check their input, call one operation and encode its answer; every
// non-2xx answer is a control.Error.

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	allow := map[string][]string{}
	handle := func(method, path string, h http.HandlerFunc) {
		mux.HandleFunc(method+" "+path, h)
		allow[path] = append(allow[path], method)
	}
	const (
		nets        = "/v1/networks"
		netw        = nets + "/{id}" // {id} is always a network's ID (pathNetwork)
		member      = netw + "/members/{node}"
		adminTokens = "/v1/admin/tokens"
	)
	handle("GET", "/v1/health", s.public(s.health))
	// Each admin route says the role it needs, whether it needs the whole
	// controller in scope (otherwise the network in its path must be in
	// the token's scope) and whether it is a change, which is audited
	// (access.go, audit.go).
	const viewer, operator, admin = control.RoleViewer, control.RoleOperator, control.RoleAdmin
	read := func(role control.Role, action string) access { return access{role: role, action: action} }
	change := func(role control.Role, action string) access { return access{role: role, action: action, change: true} }
	whole := func(a access) access { a.controller = true; return a }
	handle("POST", nets, s.admin(whole(change(admin, "network.create")), s.hCreateNetwork))
	handle("GET", nets, s.admin(read(viewer, "network.list"), s.hListNetworks))
	handle("GET", netw, s.admin(read(viewer, "network.show"), s.hGetNetwork))
	handle("PATCH", netw, s.admin(change(admin, "network.update"), s.hUpdateNetwork))
	handle("DELETE", netw, s.admin(change(admin, "network.delete"), s.hDeleteNetwork))
	handle("POST", netw+"/routes", s.admin(change(operator, "route.add"), s.hAddRoute))
	handle("DELETE", netw+"/routes", s.admin(change(operator, "route.delete"), s.hDeleteRoute))
	handle("PUT", netw+"/routes", s.admin(change(operator, "route.set"), s.hSetRoute))
	handle("GET", netw+"/members", s.admin(read(viewer, "member.list"), s.hListMembers))
	handle("POST", member+"/allow", s.admin(change(operator, "member.allow"), s.hAllowMember))
	handle("POST", member+"/deny", s.admin(change(operator, "member.deny"), s.hDenyMember))
	handle("PUT", member+"/address", s.admin(change(operator, "member.address"), s.hSetAddress))
	handle("GET", member+"/address", s.admin(read(viewer, "member.address.check"), s.hCheckAddress))
	handle("PUT", member+"/tags", s.admin(change(operator, "member.tags"), s.hSetTags))
	handle("DELETE", member, s.admin(change(operator, "member.remove"), s.hRemoveMember))
	handle("PUT", netw+"/rules", s.admin(change(admin, "rules.set"), s.hSetRules))
	handle("POST", netw+"/policy/test", s.admin(read(viewer, "policy.test"), s.hTestPolicy))
	handle("POST", netw+"/tokens", s.admin(change(operator, "token.create"), s.hCreateToken))
	handle("GET", netw+"/tokens", s.admin(read(viewer, "token.list"), s.hListTokens))
	handle("DELETE", netw+"/tokens/{token}", s.admin(change(operator, "token.revoke"), s.hRevokeToken))
	handle("POST", adminTokens, s.admin(whole(change(admin, "admin_token.create")), s.hCreateAdminToken))
	handle("GET", adminTokens, s.admin(whole(read(admin, "admin_token.list")), s.hListAdminTokens))
	handle("DELETE", adminTokens+"/{token}", s.admin(whole(change(admin, "admin_token.revoke")), s.hRevokeAdminToken))
	handle("GET", "/v1/audit", s.admin(read(viewer, "audit.list"), s.hAudit))
	handle("POST", netw+"/join", s.member(s.hJoin))
	handle("POST", netw+"/sync", s.member(s.hSync))
	handle("POST", netw+"/leave", s.member(s.hLeave))
	// Wrong methods and unknown paths get JSON errors too.
	for path, methods := range allow {
		methods := strings.Join(slices.Sorted(slices.Values(methods)), ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", methods)
			writeError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path+"; use "+methods)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API path: "+r.URL.Path)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeAnswer writes a member configuration, its pre-encoded peers as
// they are: a full configuration of a large network is two slices of a
// buffer that all members share.
func writeAnswer(w http.ResponseWriter, a answer) error {
	head, tail, err := a.frame()
	if err != nil {
		return err
	}
	n := len(head) + len(tail)
	for _, p := range a.peers {
		n += len(p)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(n))
	w.WriteHeader(http.StatusOK)
	// A delta is many small pieces; gathered in a large buffer they go
	// out in full-size TLS records (net/http's own buffer is 4 kB, a
	// record and a syscall each). Large pieces pass straight through.
	bw := answerBufs.Get().(*bufio.Writer)
	bw.Reset(w)
	bw.Write(head)
	for _, p := range a.peers {
		bw.Write(p)
	}
	bw.Write(tail)
	bw.Flush() // an error here is the client gone: nothing more to tell it
	bw.Reset(nil)
	answerBufs.Put(bw)
	return nil
}

var answerBufs = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, control.Error{Error: msg})
}

// finish answers a handler's error, if any.
func (s *Server) finish(w http.ResponseWriter, r *http.Request, err error) {
	if err == nil {
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away
	}
	status := statusOf(err)
	msg := err.Error()
	if diskFull(err) {
		// Nothing was written: the admin can free space and try again.
		s.logf("%s %s: %v", r.Method, r.URL.Path, err)
		status, msg = http.StatusInsufficientStorage, "the controller's disk is full: nothing was changed; free space on its state partition and try again"
	} else if status == http.StatusInternalServerError {
		s.logf("internal error on %s %s: %v", r.Method, r.URL.Path, err)
		msg = "internal error; see the controller's log"
	}
	writeError(w, status, msg)
}

// diskFull reports whether err is the database or the file system saying
// it has no room (SQLITE_FULL, PostgreSQL's disk_full, ENOSPC).
func diskFull(err error) bool {
	var se interface{ Code() int }
	var pe interface{ SQLState() string }
	const sqliteFull, pgDiskFull = 13, "53100"
	return errors.Is(err, syscall.ENOSPC) || errors.As(err, &se) && se.Code()&0xff == sqliteFull ||
		errors.As(err, &pe) && pe.SQLState() == pgDiskFull
}

func (s *Server) public(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { s.finish(w, r, h(w, r)) }
}

// member wraps a handler of a member call: the node is who its TLS client
// certificate proves it is. The admin token is no identity here.
func (s *Server) member(h func(w http.ResponseWriter, r *http.Request, c caller) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := callerOf(r)
		if err != nil {
			writeError(w, http.StatusUnauthorized, "member calls need the node's client certificate: "+err.Error())
			return
		}
		s.finish(w, r, h(w, r, c))
	}
}

// memberRef names a member: by its node ID, and by the fingerprint (pin)
// of its identity key when that is known: the member itself calling, or
// an admin who named it by fingerprint. Node IDs are 40 bits, short
// enough that a stranger can make a key with someone's node ID; the
// fingerprint cannot be matched.
type memberRef struct {
	node string // its node ID, derived from its key
	key  string // the pin of its key, which the node ID abbreviates; "" if not given
}

// caller is the node a member call comes from: key is always set.
type caller = memberRef

func callerOf(r *http.Request) (caller, error) {
	node, err := control.PeerNodeID(r.TLS)
	if err != nil {
		return caller{}, err
	}
	k, ok := r.TLS.PeerCertificates[0].PublicKey.(ed25519.PublicKey)
	if !ok {
		return caller{}, errors.New("certificate key is not Ed25519")
	}
	return caller{node: node, key: control.PinOf(k)}, nil
}

func networkID(r *http.Request) (string, error) {
	id := control.NormalizeID(r.PathValue("id"))
	if err := control.CheckNetworkID(id); err != nil {
		return "", badRequest("%v", err)
	}
	return id, nil
}

// networkAndNode reads the network ID and the member from the path; the
// member may be given by node ID or by its fingerprint (sha256:...).
func networkAndNode(r *http.Request) (string, memberRef, error) {
	id, err := networkID(r)
	if err != nil {
		return "", memberRef{}, err
	}
	ref, err := parseMemberRef(r.PathValue("node"))
	return id, ref, err
}

func parseMemberRef(s string) (memberRef, error) {
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(s)), "sha256:") {
		pin, err := control.ParsePin(s)
		if err != nil {
			return memberRef{}, badRequest("member fingerprint: %v", err)
		}
		return memberRef{node: control.NodeIDOfPin(pin), key: pin}, nil
	}
	node := control.NormalizeID(s)
	if err := control.CheckNodeID(node); err != nil {
		return memberRef{}, badRequest("%v (or give the member's fingerprint, sha256:...)", err)
	}
	return memberRef{node: node}, nil
}

// remoteAddr is the address a request came from.
func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// health answers a load balancer: 200 while this replica can serve (its
// database answers within two seconds), 503 when it cannot or is
// shutting down, so that members are sent elsewhere. It is public: what
// went wrong is logged, not told.
func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	err := s.store.Read(ctx, func(tx *Tx) error {
		var one int
		return tx.tx.QueryRowContext(tx.ctx, `SELECT 1`).Scan(&one)
	})
	select {
	case <-s.stopping:
		err = errors.New("shutting down")
	default:
	}
	if was := s.unhealthy.Swap(err != nil); was != (err != nil) {
		if err != nil {
			s.logf("health: not serving: %v", err)
		} else {
			s.logf("health: serving again")
		}
	}
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ok": false, "pin": s.pin, "replica": s.advertise, "error": "not serving: see the controller's log"})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "pin": s.pin, "replica": s.advertise})
	return nil
}

func (s *Server) hCreateNetwork(w http.ResponseWriter, r *http.Request) error {
	var req control.CreateNetworkRequest
	if err := readBody(w, r, &req); err != nil {
		return err
	}
	auditOf(r.Context()).note("%s", fields("name", quoteShort(req.Name), "cidr", req.CIDR.String(), "mtu", optInt(req.MTU),
		"auto_allow", strconv.FormatBool(req.AutoAllow), "require_token", strconv.FormatBool(req.RequireToken)))
	n, err := s.createNetwork(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, n)
	return nil
}

func (s *Server) hListNetworks(w http.ResponseWriter, r *http.Request) error {
	ns, err := s.listNetworks(r.Context())
	if err != nil {
		return err
	}
	p := principalOf(r.Context())
	ns = slices.DeleteFunc(ns, func(n control.Network) bool { return !p.scope.Has(n.ID) })
	writeJSON(w, http.StatusOK, ns)
	return nil
}

func (s *Server) hGetNetwork(w http.ResponseWriter, r *http.Request) error {
	id, err := networkID(r)
	if err != nil {
		return err
	}
	n, err := s.getNetwork(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, n)
	return nil
}

func (s *Server) hUpdateNetwork(w http.ResponseWriter, r *http.Request) error {
	id, err := networkID(r)
	if err != nil {
		return err
	}
	var req control.UpdateNetworkRequest
	if err := readBody(w, r, &req); err != nil {
		return err
	}
	auditOf(r.Context()).note("%s", updateText(req))
	n, err := s.updateNetwork(r.Context(), id, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, n)
	return nil
}

func (s *Server) hDeleteNetwork(w http.ResponseWriter, r *http.Request) error {
	id, err := networkID(r)
	if err != nil {
		return err
	}
	if err := s.deleteNetwork(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) hAddRoute(w http.ResponseWriter, r *http.Request) error {
	return s.putRoute(w, r, false)
}

// hSetRoute answers PUT .../routes: the route to its destination, added or
// replacing the one there is.
func (s *Server) hSetRoute(w http.ResponseWriter, r *http.Request) error {
	return s.putRoute(w, r, true)
}

func (s *Server) putRoute(w http.ResponseWriter, r *http.Request, replace bool) error {
	id, err := networkID(r)
	if err != nil {
		return err
	}
	var req control.Route
	if err := readBody(w, r, &req); err != nil {
		return err
	}
	a := auditOf(r.Context())
	if req.Dest.IsValid() {
		a.setTarget(req.Dest.String())
	}
	a.note("%s", req)
	n, err := s.addRoute(r.Context(), id, req, replace)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, n)
	return nil
}

func (s *Server) hDeleteRoute(w http.ResponseWriter, r *http.Request) error {
	id, err := networkID(r)
	if err != nil {
		return err
	}
	q := r.URL.Query().Get("dest")
	dest, err := netip.ParsePrefix(q)
	if err != nil {
		return badRequest("dest query parameter %s: want a CIDR such as 172.16.0.0/16", quoteShort(q))
	}
	auditOf(r.Context()).setTarget(dest.String())
	n, err := s.deleteRoute(r.Context(), id, dest)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, n)
	return nil
}

func (s *Server) hListMembers(w http.ResponseWriter, r *http.Request) error {
	id, err := networkID(r)
	if err != nil {
		return err
	}
	ms, err := s.listMembers(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ms)
	return nil
}

// memberChange is the shape of allow and deny.
func (s *Server) memberChange(op func(ctx context.Context, id string, ref memberRef) (control.Member, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, ref, err := networkAndNode(r)
		if err != nil {
			return err
		}
		m, err := op(r.Context(), id, ref)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, m)
		return nil
	}
}

func (s *Server) hAllowMember(w http.ResponseWriter, r *http.Request) error {
	return s.memberChange(s.allowMember)(w, r)
}

func (s *Server) hDenyMember(w http.ResponseWriter, r *http.Request) error {
	return s.memberChange(s.denyMember)(w, r)
}

func (s *Server) hSetAddress(w http.ResponseWriter, r *http.Request) error {
	var req control.SetAddressRequest
	if err := readBody(w, r, &req); err != nil {
		return err
	}
	auditOf(r.Context()).note("address %s", req.Address)
	return s.memberChange(func(ctx context.Context, id string, ref memberRef) (control.Member, error) {
		return s.setMemberAddress(ctx, id, ref, req.Address)
	})(w, r)
}

// hCheckAddress answers GET .../address?check=ADDR: would PUT take it.
func (s *Server) hCheckAddress(w http.ResponseWriter, r *http.Request) error {
	id, ref, err := networkAndNode(r)
	if err != nil {
		return err
	}
	a, err := netip.ParseAddr(r.URL.Query().Get("check"))
	if err != nil {
		return badRequest("check: want an IP address, got %s", quoteShort(r.URL.Query().Get("check")))
	}
	c, err := s.checkAddress(r.Context(), id, ref, a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) hSetTags(w http.ResponseWriter, r *http.Request) error {
	var req control.SetTagsRequest
	if err := readBody(w, r, &req); err != nil {
		return err
	}
	auditOf(r.Context()).note("tags %s", quoteShort(strings.Join(req.Tags, ",")))
	return s.memberChange(func(ctx context.Context, id string, ref memberRef) (control.Member, error) {
		return s.setMemberTags(ctx, id, ref, req.Tags)
	})(w, r)
}

func (s *Server) hSetRules(w http.ResponseWriter, r *http.Request) error {
	id, err := networkID(r)
	if err != nil {
		return err
	}
	var req control.SetRulesRequest
	if err := readBody(w, r, &req); err != nil {
		return err
	}
	auditOf(r.Context()).note("%s", rulesNote(req))
	n, warnings, err := s.setRules(r.Context(), id, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, control.SetRulesAnswer{Network: n, Warnings: warnings})
	return nil
}

func (s *Server) hTestPolicy(w http.ResponseWriter, r *http.Request) error {
	id, err := networkID(r)
	if err != nil {
		return err
	}
	var req control.PolicyTestRequest
	if err := readBody(w, r, &req); err != nil {
		return err
	}
	d, err := s.testPolicy(r.Context(), id, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (s *Server) hRemoveMember(w http.ResponseWriter, r *http.Request) error {
	id, ref, err := networkAndNode(r)
	if err != nil {
		return err
	}
	if err := s.removeMember(r.Context(), id, ref, false); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) hCreateToken(w http.ResponseWriter, r *http.Request) error {
	id, err := networkID(r)
	if err != nil {
		return err
	}
	var req control.CreateTokenRequest
	if err := readBody(w, r, &req); err != nil {
		return err
	}
	auditOf(r.Context()).note("%s", fields("reusable", strconv.FormatBool(req.Reusable), "allow", strconv.FormatBool(req.Allow),
		"address", textAddr(req.Address), "tags", optQuote(strings.Join(req.Tags, ",")), "expires_in", optDuration(req.ExpiresIn), "note", optQuote(req.Note)))
	t, err := s.createToken(r.Context(), id, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, t)
	return nil
}

func (s *Server) hListTokens(w http.ResponseWriter, r *http.Request) error {
	id, err := networkID(r)
	if err != nil {
		return err
	}
	ts, err := s.listTokens(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ts)
	return nil
}

func (s *Server) hRevokeToken(w http.ResponseWriter, r *http.Request) error {
	id, err := networkID(r)
	if err != nil {
		return err
	}
	t, err := s.revokeToken(r.Context(), id, strings.ToLower(r.PathValue("token")))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *Server) hJoin(w http.ResponseWriter, r *http.Request, node caller) error {
	id, err := networkID(r)
	if err != nil {
		return err
	}
	var req control.JoinRequest
	if err := readBody(w, r, &req); err != nil {
		return err
	}
	a, err := s.join(r.Context(), id, node, req, remoteAddr(r))
	if err != nil {
		return err
	}
	return writeAnswer(w, a)
}

func (s *Server) hSync(w http.ResponseWriter, r *http.Request, node caller) error {
	id, err := networkID(r)
	if err != nil {
		return err
	}
	var req control.SyncRequest
	if err := readBody(w, r, &req); err != nil {
		return err
	}
	a, err := s.sync(r.Context(), id, node, req, remoteAddr(r), r.URL.Query().Get("delta") == "1")
	if err != nil {
		return err
	}
	return writeAnswer(w, a)
}

func (s *Server) hLeave(w http.ResponseWriter, r *http.Request, node caller) error {
	id, err := networkID(r)
	if err != nil {
		return err
	}
	if err := s.removeMember(r.Context(), id, node, true); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// fields renders name-value pairs for the audit log, "name value, ...",
// leaving out those whose value is "" (not given).
func fields(pairs ...string) string {
	var parts []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			parts = append(parts, pairs[i]+" "+pairs[i+1])
		}
	}
	return strings.Join(parts, ", ")
}

func optInt(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func optQuote(s string) string {
	if s == "" {
		return ""
	}
	return quoteShort(s)
}

func optDuration(d control.Duration) string {
	if d == 0 {
		return ""
	}
	return time.Duration(d).String()
}

// updateText is what a network update asks for, for the audit log.
func updateText(req control.UpdateNetworkRequest) string {
	var name, mtu, auto, require string
	if req.Name != nil {
		name = quoteShort(*req.Name)
	}
	if req.MTU != nil {
		mtu = strconv.Itoa(*req.MTU)
	}
	if req.AutoAllow != nil {
		auto = strconv.FormatBool(*req.AutoAllow)
	}
	if req.RequireToken != nil {
		require = strconv.FormatBool(*req.RequireToken)
	}
	return fields("name", name, "mtu", mtu, "auto_allow", auto, "require_token", require)
}

// rulesNote is new rules, for the audit log: how many, and as many of
// them as fit (parsed rules, rendered again).
func rulesNote(req control.SetRulesRequest) string {
	texts := make([]string, 0, len(req.Rules))
	for _, r := range req.Rules {
		texts = append(texts, r.String())
	}
	return fmt.Sprintf("%d rules: %s", len(req.Rules), strings.Join(texts, "; "))
}
