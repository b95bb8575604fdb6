package webconsole

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/nodeconfig"
	"github.com/gatenet/gate/services/policy"
)

// view is what a page template is given.
type view struct {
	Title        string
	S            *signedIn
	Flash, Error string
	Next         string
	Nav          string // the menu entry to mark: networks, audit, access
	Tab          string // a network's tab: members, routes, tokens, rules
	Form         url.Values
	LiveURL      string // what the page's script fetches again at a change
	FormNode     string // the member a refused member form was for
	Once         string // a fresh once value for a form that makes a secret

	Networks    []control.Network
	Net         *control.Network
	Members     []memberRow
	List        memberList // which of the members are shown
	Routes      []routeRow
	Gateways    []memberRow // allowed members with an address: a route's gateway candidates
	Tokens      []control.Token
	NewToken    *newToken
	Rules       string
	Base        string // the network's rules as the page shows them read (the rules form's base)
	Decision    *control.PolicyDecision
	Audit       []control.AuditEntry
	AdminTokens []control.AdminToken
	NetNames    map[string]string // network ID -> name, for the scopes shown
	NewAdmin    *control.AdminToken
}

// Can says whether the signed-in token's role includes role.
func (v *view) Can(role string) bool { return v.S != nil && v.S.Role.Includes(control.Role(role)) }

// Live says whether a thing that expires at t is still live.
func (v *view) Live(t time.Time) bool { return time.Now().Before(t) }

// Whole says whether the signed-in token reaches the whole controller.
func (v *view) Whole() bool { return v.S != nil && v.S.Scope.Controller }

// onlineWithin is how recently a member must have been heard from to be
// shown online: a member long-polls at most control.MaxSyncWait, and
// last-seen times may lag in the database by half a minute.
const onlineWithin = control.MaxSyncWait + 45*time.Second

type memberRow struct {
	control.Member
	Online bool
	// Routes are the destinations of the routes this member is a
	// gateway of (via or backup): its removal leaves them pointing at
	// an address nobody has.
	Routes []string
}

func (m memberRow) Name() string { return cmp.Or(m.Hostname, m.NodeID) }

func (m memberRow) Address() string {
	if len(m.Addresses) == 0 {
		return ""
	}
	return m.Addresses[0].String()
}

// membersPerPage bounds a members page: a row is about 2.5 kB of HTML,
// and a live page fetches itself again at every change.
const membersPerPage = 100

// memberList is one page of a network's members, filtered.
type memberList struct {
	Q                string // the filter typed
	Page, Pages      int    // from 1
	Total, Shown     int    // members in all, and passing the filter
	First, Last      int    // the rows shown, from 1
	Pending          int    // members waiting for an admin, in all
	PrevURL, NextURL string // "" at either end
}

// filterMembers keeps the members whose name, node ID, fingerprint,
// address, tags or state contain q (any case), and cuts page page (from
// 1) of them.
func filterMembers(rows []memberRow, q string, page int) ([]memberRow, memberList) {
	l := memberList{Q: q, Total: len(rows)}
	for _, m := range rows {
		if m.State == control.StatePending {
			l.Pending++
		}
	}
	if q = strings.ToLower(strings.TrimSpace(q)); q != "" {
		var kept []memberRow
		for _, m := range rows {
			hay := strings.ToLower(strings.Join([]string{m.Hostname, m.NodeID, m.Fingerprint, m.Address(), m.State, strings.Join(m.Tags, " ")}, " "))
			if strings.Contains(hay, q) {
				kept = append(kept, m)
			}
		}
		rows = kept
	}
	l.Shown = len(rows)
	l.Pages = max(1, (len(rows)+membersPerPage-1)/membersPerPage)
	l.Page = min(max(page, 1), l.Pages)
	lo, hi := (l.Page-1)*membersPerPage, min(l.Page*membersPerPage, len(rows))
	l.First, l.Last = lo+1, hi
	pageURL := func(p int) string {
		v := url.Values{}
		if l.Q != "" {
			v.Set("q", l.Q)
		}
		if p > 1 {
			v.Set("page", strconv.Itoa(p))
		}
		if len(v) == 0 {
			return "?"
		}
		return "?" + v.Encode()
	}
	if l.Page > 1 {
		l.PrevURL = pageURL(l.Page - 1)
	}
	if l.Page < l.Pages {
		l.NextURL = pageURL(l.Page + 1)
	}
	return rows[lo:hi], l
}

type routeRow struct {
	control.Route
	Gateways []gatewayRow // via, then the backups, in order
}

type gatewayRow struct {
	Addr   netip.Addr
	Name   string
	Online bool
	Active bool
}

type newToken struct {
	control.Token
	UserDataDO, UserDataAWS string
}

func (c *Console) networksPage(w http.ResponseWriter, r *http.Request, s *signedIn) {
	c.showNetworks(w, r, s, http.StatusOK, "", nil)
}

func (c *Console) showNetworks(w http.ResponseWriter, r *http.Request, s *signedIn, status int, msg string, form url.Values) {
	ns, err := s.api.Networks(r.Context())
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, status, "networks", &view{Title: "Networks", S: s, Nav: "networks", Networks: ns, Error: msg, Form: form, Flash: c.takeFlash(w, r)})
}

func (c *Console) createNetwork(w http.ResponseWriter, r *http.Request, s *signedIn) {
	f := r.PostForm
	req := control.CreateNetworkRequest{Name: strings.TrimSpace(f.Get("name")), AutoAllow: f.Get("auto_allow") != "", RequireToken: f.Get("require_token") != ""}
	cidr, err := netip.ParsePrefix(strings.TrimSpace(f.Get("cidr")))
	if err != nil {
		c.showNetworks(w, r, s, http.StatusBadRequest, fmt.Sprintf("Address range %s is not a CIDR like 192.168.254.0/24.", quote(f.Get("cidr"))), f)
		return
	}
	req.CIDR = cidr
	n, err := s.api.CreateNetwork(r.Context(), req)
	if err != nil {
		c.showNetworks(w, r, s, statusOf(err), messageOf(err), f)
		return
	}
	c.done(w, r, "/n/"+n.ID, "Network "+n.Name+" created.")
}

// network reads the network of the path; false when it answered the
// request itself (an error page).
func (c *Console) network(w http.ResponseWriter, r *http.Request, s *signedIn) (control.Network, bool) {
	id := r.PathValue("id")
	if control.CheckNetworkID(control.NormalizeID(id)) != nil {
		c.render(w, r, http.StatusNotFound, "error", &view{Title: "Not found", S: s, Error: "There is no network " + quote(id) + "."})
		return control.Network{}, false
	}
	n, err := s.api.Network(r.Context(), id)
	if err != nil {
		c.fail(w, r, s, err)
		return n, false
	}
	return n, true
}

func (c *Console) membersPage(w http.ResponseWriter, r *http.Request, s *signedIn) {
	c.showMembers(w, r, s, http.StatusOK, "", nil)
}

func (c *Console) showMembers(w http.ResponseWriter, r *http.Request, s *signedIn, status int, msg string, form url.Values) {
	c.showMembersFor(w, r, s, status, msg, form, "")
}

// showMembersFor shows the members page after a refused form for member
// node, its fields as they were typed.
func (c *Console) showMembersFor(w http.ResponseWriter, r *http.Request, s *signedIn, status int, msg string, form url.Values, node string) {
	n, rows, ok := c.networkMembers(w, r, s)
	if !ok {
		return
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	rows, list := filterMembers(rows, control.Truncate(r.URL.Query().Get("q"), 100), page)
	for i, m := range rows {
		for _, rt := range n.Routes {
			for _, a := range m.Addresses {
				if rt.Via == a || slices.Contains(rt.Backups, a) {
					rows[i].Routes = append(rows[i].Routes, rt.Dest.String())
				}
			}
		}
	}
	c.render(w, r, status, "members", &view{Title: n.Name, S: s, Nav: "networks", Tab: "members", Net: &n, Members: rows, List: list,
		Error: msg, Form: form, FormNode: node, Flash: c.takeFlash(w, r)})
}

// networkMembers reads the network of the path and its members; false
// when it answered the request itself (an error page).
func (c *Console) networkMembers(w http.ResponseWriter, r *http.Request, s *signedIn) (control.Network, []memberRow, bool) {
	n, ok := c.network(w, r, s)
	if !ok {
		return n, nil, false
	}
	rows, err := c.members(r, s, n.ID)
	if err != nil {
		c.fail(w, r, s, err)
		return n, nil, false
	}
	return n, rows, true
}

// members lists network id's members, those waiting for an admin first,
// then by name.
func (c *Console) members(r *http.Request, s *signedIn, id string) ([]memberRow, error) {
	ms, err := s.api.Members(r.Context(), id)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	rows := make([]memberRow, len(ms))
	for i, m := range ms {
		rows[i] = memberRow{Member: m, Online: !m.LastSeen.IsZero() && now.Sub(m.LastSeen) < onlineWithin}
	}
	rank := map[string]int{control.StatePending: 0, control.StateAllowed: 1, control.StateDenied: 2}
	slices.SortStableFunc(rows, func(a, b memberRow) int {
		return cmp.Or(cmp.Compare(rank[a.State], rank[b.State]), strings.Compare(a.Name(), b.Name()), strings.Compare(a.NodeID, b.NodeID))
	})
	return rows, nil
}

func (c *Console) renameNetwork(w http.ResponseWriter, r *http.Request, s *signedIn) {
	name := strings.TrimSpace(r.PostForm.Get("name"))
	n, err := s.api.UpdateNetwork(r.Context(), r.PathValue("id"), control.UpdateNetworkRequest{Name: &name})
	if err != nil {
		c.showMembers(w, r, s, statusOf(err), messageOf(err), r.PostForm)
		return
	}
	c.done(w, r, "/n/"+n.ID, "Network renamed to "+n.Name+".")
}

// admissions are how a network takes new members, as the settings form
// offers them.
var admissions = map[string]struct{ autoAllow, requireToken bool }{
	"wait": {false, false}, "allow": {true, false}, "token": {false, true},
}

func (c *Console) networkSettings(w http.ResponseWriter, r *http.Request, s *signedIn) {
	f := r.PostForm
	adm, ok := admissions[f.Get("admission")]
	if !ok {
		c.showMembers(w, r, s, http.StatusBadRequest, "Pick how the network takes new members.", f)
		return
	}
	mtu, err := strconv.Atoi(strings.TrimSpace(f.Get("mtu")))
	if err != nil {
		c.showMembers(w, r, s, http.StatusBadRequest, fmt.Sprintf("MTU %s is not a number.", quote(f.Get("mtu"))), f)
		return
	}
	n, err := s.api.UpdateNetwork(r.Context(), r.PathValue("id"), control.UpdateNetworkRequest{AutoAllow: &adm.autoAllow, RequireToken: &adm.requireToken, MTU: &mtu})
	if err != nil {
		c.showMembers(w, r, s, statusOf(err), messageOf(err), f)
		return
	}
	c.done(w, r, "/n/"+n.ID, "Settings of "+n.Name+" saved.")
}

func (c *Console) deleteNetwork(w http.ResponseWriter, r *http.Request, s *signedIn) {
	n, ok := c.network(w, r, s)
	if !ok {
		return
	}
	if r.PostForm.Get("confirm") != n.Name {
		c.showMembers(w, r, s, http.StatusBadRequest, "To delete the network, type its name, "+quote(n.Name)+", in the box.", r.PostForm)
		return
	}
	if err := s.api.DeleteNetwork(r.Context(), n.ID); err != nil {
		c.showMembers(w, r, s, statusOf(err), messageOf(err), r.PostForm)
		return
	}
	c.done(w, r, "/networks", "Network "+n.Name+" deleted.")
}

// memberOp changes one member: allow, deny, address, tags, remove.
func (c *Console) memberOp(w http.ResponseWriter, r *http.Request, s *signedIn) {
	id, node, f := r.PathValue("id"), r.PathValue("node"), r.PostForm
	ctx := r.Context()
	var m control.Member
	var err error
	var what string
	switch r.PathValue("op") {
	case "allow":
		m, err = s.api.AllowMember(ctx, id, node)
		what = "allowed"
	case "deny":
		m, err = s.api.DenyMember(ctx, id, node)
		what = "denied"
	case "address":
		a, perr := netip.ParseAddr(strings.TrimSpace(f.Get("address")))
		if perr != nil {
			c.showMembersFor(w, r, s, http.StatusBadRequest, fmt.Sprintf("Address %s is not an IP address.", quote(f.Get("address"))), f, node)
			return
		}
		m, err = s.api.SetMemberAddress(ctx, id, node, a)
		what = "given address " + a.String()
	case "tags":
		m, err = s.api.SetMemberTags(ctx, id, node, splitList(f.Get("tags")))
		what = "tagged"
	case "remove":
		if err = s.api.RemoveMember(ctx, id, node); err == nil {
			// The name comes from the page's own form: shown, never used.
			c.done(w, r, "/n/"+id, "Member "+cmp.Or(control.Truncate(printableOnly(f).Get("name"), 64), node)+" removed.")
			return
		}
	default:
		c.render(w, r, http.StatusNotFound, "error", &view{Title: "Not found", S: s, Error: "No such change."})
		return
	}
	if err != nil {
		c.showMembersFor(w, r, s, statusOf(err), messageOf(err), f, node)
		return
	}
	c.done(w, r, "/n/"+id, "Member "+memberRow{Member: m}.Name()+" "+what+".")
}

// checkAddress answers the address field as it is typed: the check the
// controller makes when the address is set.
func (c *Console) checkAddress(w http.ResponseWriter, r *http.Request, s *signedIn) {
	text := strings.TrimSpace(r.URL.Query().Get("address"))
	var problem string
	if a, err := netip.ParseAddr(text); err != nil {
		problem = "not an IP address"
	} else if chk, err := s.api.CheckMemberAddress(r.Context(), r.PathValue("id"), r.PathValue("node"), a); err != nil {
		problem = messageOf(err)
	} else {
		problem = chk.Problem
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"ok": problem == "", "problem": problem})
}

// routesPage shows the routes; with ?dest= (a route's Edit link) its
// form comes filled in with that route, to replace it.
func (c *Console) routesPage(w http.ResponseWriter, r *http.Request, s *signedIn) {
	var form url.Values
	if q := r.URL.Query(); q.Get("dest") != "" {
		form = url.Values{"dest": {q.Get("dest")}, "via": {q.Get("via")}, "backups": {q.Get("backups")}, "replace": {"1"}}
	}
	c.showRoutes(w, r, s, http.StatusOK, "", form)
}

func (c *Console) showRoutes(w http.ResponseWriter, r *http.Request, s *signedIn, status int, msg string, form url.Values) {
	n, rows, ok := c.networkMembers(w, r, s)
	if !ok {
		return
	}
	byAddr := map[netip.Addr]memberRow{}
	var gws []memberRow
	for _, m := range rows {
		for _, a := range m.Addresses {
			byAddr[a] = m
		}
		if m.State == control.StateAllowed && len(m.Addresses) > 0 {
			gws = append(gws, m)
		}
	}
	var routes []routeRow
	for _, rt := range n.Routes {
		row := routeRow{Route: rt}
		// The controller does not see which gateway members use; each
		// member picks the first healthy one in order. Shown active:
		// the first that is online.
		active := false
		for _, a := range append([]netip.Addr{rt.Via}, rt.Backups...) {
			m, known := byAddr[a]
			g := gatewayRow{Addr: a, Name: m.Name(), Online: known && m.Online && m.State == control.StateAllowed}
			if g.Online && !active {
				g.Active, active = true, true
			}
			row.Gateways = append(row.Gateways, g)
		}
		routes = append(routes, row)
	}
	c.render(w, r, status, "routes", &view{Title: n.Name + ": routes", S: s, Nav: "networks", Tab: "routes", Net: &n, Routes: routes, Gateways: gws,
		Error: msg, Form: form, Flash: c.takeFlash(w, r)})
}

func (c *Console) addRoute(w http.ResponseWriter, r *http.Request, s *signedIn) {
	f := r.PostForm
	dest, err := netip.ParsePrefix(strings.TrimSpace(f.Get("dest")))
	if err != nil {
		c.showRoutes(w, r, s, http.StatusBadRequest, fmt.Sprintf("Destination %s is not a CIDR like 10.10.0.0/16.", quote(f.Get("dest"))), f)
		return
	}
	via, err := netip.ParseAddr(strings.TrimSpace(f.Get("via")))
	if err != nil {
		c.showRoutes(w, r, s, http.StatusBadRequest, fmt.Sprintf("Gateway %s is not an overlay address.", quote(f.Get("via"))), f)
		return
	}
	rt := control.Route{Dest: dest, Via: via}
	put, verb := s.api.AddRoute, "added"
	if f.Get("replace") != "" {
		put, verb = s.api.SetRoute, "set"
	}
	for _, b := range splitList(f.Get("backups")) {
		a, err := netip.ParseAddr(b)
		if err != nil {
			c.showRoutes(w, r, s, http.StatusBadRequest, fmt.Sprintf("Backup gateway %s is not an overlay address.", quote(b)), f)
			return
		}
		rt.Backups = append(rt.Backups, a)
	}
	if _, err := put(r.Context(), r.PathValue("id"), rt); err != nil {
		c.showRoutes(w, r, s, statusOf(err), messageOf(err), f)
		return
	}
	msg := "Route to " + dest.String() + " via " + via.String()
	if len(rt.Backups) > 0 {
		var bs []string
		for _, b := range rt.Backups {
			bs = append(bs, b.String())
		}
		msg += ", then " + strings.Join(bs, ", then ")
	}
	msg += " " + verb + "."
	// A gateway may join after its route is made (with a token that
	// gives it the address), so an address nobody has is taken, and said.
	if ms, err := s.api.Members(r.Context(), r.PathValue("id")); err == nil {
		held := map[netip.Addr]bool{}
		for _, m := range ms {
			for _, a := range m.Addresses {
				held[a] = true
			}
		}
		var nobody []string
		for _, a := range append([]netip.Addr{via}, rt.Backups...) {
			if !held[a] {
				nobody = append(nobody, a.String())
			}
		}
		if len(nobody) > 0 {
			msg += " No member has " + strings.Join(nobody, ", ") + " yet: give it to the gateway (its static address, or its join token's)."
		}
	}
	c.done(w, r, "/n/"+r.PathValue("id")+"/routes", msg)
}

func (c *Console) deleteRoute(w http.ResponseWriter, r *http.Request, s *signedIn) {
	dest, err := netip.ParsePrefix(r.PostForm.Get("dest"))
	if err != nil {
		c.showRoutes(w, r, s, http.StatusBadRequest, fmt.Sprintf("Destination %s is not a CIDR.", quote(r.PostForm.Get("dest"))), nil)
		return
	}
	if _, err := s.api.DeleteRoute(r.Context(), r.PathValue("id"), dest); err != nil {
		c.showRoutes(w, r, s, statusOf(err), messageOf(err), nil)
		return
	}
	c.done(w, r, "/n/"+r.PathValue("id")+"/routes", "Route to "+dest.String()+" deleted.")
}

func (c *Console) tokensPage(w http.ResponseWriter, r *http.Request, s *signedIn) {
	c.showTokens(w, r, s, http.StatusOK, "", nil, nil)
}

func (c *Console) showTokens(w http.ResponseWriter, r *http.Request, s *signedIn, status int, msg string, form url.Values, nt *newToken) {
	n, ok := c.network(w, r, s)
	if !ok {
		return
	}
	ts, err := s.api.Tokens(r.Context(), n.ID)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, status, "tokens", &view{Title: n.Name + ": join tokens", S: s, Nav: "networks", Tab: "tokens", Net: &n, Tokens: ts, NewToken: nt,
		Error: msg, Form: form, Flash: c.takeFlash(w, r)})
}

// tokenLifetimes are the expiries a join token can be made with here.
var tokenLifetimes = map[string]time.Duration{"1h": time.Hour, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour}

// errSentTwice answers a form that makes a secret, sent again.
const errSentTwice = "This form was sent already, and what it made is in the list below; its secret was shown once, then. Make another if you need one."

// secretForm checks a form that makes a secret: sent for the first time,
// with one of lifetimes picked. If not, status and msg say why.
func (c *Console) secretForm(f url.Values, lifetimes map[string]time.Duration) (life time.Duration, status int, msg string) {
	if !c.once.take(f.Get("once")) {
		return 0, http.StatusConflict, errSentTwice
	}
	life, ok := lifetimes[f.Get("expires")]
	if !ok {
		return 0, http.StatusBadRequest, "Pick how long the token lasts."
	}
	return life, 0, ""
}

func (c *Console) createToken(w http.ResponseWriter, r *http.Request, s *signedIn) {
	f := r.PostForm
	life, status, msg := c.secretForm(f, tokenLifetimes)
	if msg != "" {
		c.showTokens(w, r, s, status, msg, f, nil)
		return
	}
	req := control.CreateTokenRequest{Reusable: f.Get("reusable") != "", Allow: f.Get("allow") != "", ExpiresIn: control.Duration(life),
		Note: strings.TrimSpace(f.Get("note")), Tags: splitList(f.Get("tags"))}
	if t := strings.TrimSpace(f.Get("address")); t != "" {
		a, err := netip.ParseAddr(t)
		if err != nil {
			c.showTokens(w, r, s, http.StatusBadRequest, fmt.Sprintf("Address %s is not an IP address.", quote(t)), f, nil)
			return
		}
		req.Address = a
	}
	var serve []netip.Prefix
	for _, t := range splitList(f.Get("serve")) {
		p, err := netip.ParsePrefix(t)
		if err != nil {
			c.showTokens(w, r, s, http.StatusBadRequest, fmt.Sprintf("Subnet %s is not a CIDR like 172.16.0.0/16.", quote(t)), f, nil)
			return
		}
		serve = append(serve, p.Masked())
	}
	t, err := s.api.CreateToken(r.Context(), r.PathValue("id"), req)
	if err != nil {
		c.showTokens(w, r, s, statusOf(err), messageOf(err), f, nil)
		return
	}
	nt := &newToken{Token: t}
	nt.UserDataDO, nt.UserDataAWS = userData(t, serve, false), userData(t, serve, true)
	c.showTokens(w, r, s, http.StatusOK, "", nil, nt)
}

func (c *Console) revokeToken(w http.ResponseWriter, r *http.Request, s *signedIn) {
	t, err := s.api.RevokeToken(r.Context(), r.PathValue("id"), r.PathValue("token"))
	if err != nil {
		c.showTokens(w, r, s, statusOf(err), messageOf(err), nil, nil)
		return
	}
	c.done(w, r, "/n/"+t.NetworkID+"/tokens", "Join token "+t.ID+" revoked: nodes are refused it from now on; members that joined with it stay.")
}

// userData is the cloud-init user-data that joins a gate with token t:
// for a droplet, or for an AWS instance (one ENI, the NAT instance of
// the subnets it serves).
func userData(t control.Token, serve []netip.Prefix, aws bool) string {
	nw := nodeconfig.Network{Join: t.JoinString, Address: t.Address}
	if len(serve) > 0 {
		nw.Gateway = &nodeconfig.Gateway{Serve: serve}
		if aws {
			nw.Gateway.MasqueradeInternet = true
		}
	}
	cfg := &nodeconfig.Config{Networks: []nodeconfig.Network{nw}}
	doc := string(nodeconfig.Format(cfg))
	var b strings.Builder
	b.WriteString("#cloud-config\ngate:\n")
	for _, line := range strings.SplitAfter(strings.TrimRight(doc, "\n"), "\n") {
		b.WriteString("  " + line)
	}
	b.WriteString("\n")
	if aws && len(serve) == 0 {
		b.WriteString("  # To reach the VPC through this gate, add under the network:\n" +
			"  #   gateway: {serve: [172.16.0.0/16], masquerade: {to_internet: true}}\n")
	}
	return b.String()
}

func (c *Console) rulesPage(w http.ResponseWriter, r *http.Request, s *signedIn) {
	c.showRules(w, r, s, http.StatusOK, "", nil, nil)
}

func (c *Console) showRules(w http.ResponseWriter, r *http.Request, s *signedIn, status int, msg string, form url.Values, d *control.PolicyDecision) {
	n, ok := c.network(w, r, s)
	if !ok {
		return
	}
	rules, base := n.Rules.String(), n.Rules.String()
	if form != nil && form.Has("rules") {
		rules = printableOnly(form).Get("rules")
		// A refused edit is mended against what it was based on, so
		// that saving it still catches another's change meanwhile; after
		// a conflict, against the rules as they are now (the admin was
		// told, and reads them on the Rules page of another tab).
		if b, err := policy.ParsePolicy(form.Get("base")); err == nil && status != http.StatusConflict {
			base = b.String()
		}
	}
	c.render(w, r, status, "rules", &view{Title: n.Name + ": rules", S: s, Nav: "networks", Tab: "rules", Net: &n, Rules: rules, Base: base, Decision: d,
		Error: msg, Form: form, Flash: c.takeFlash(w, r)})
}

func (c *Console) setRules(w http.ResponseWriter, r *http.Request, s *signedIn) {
	f := r.PostForm
	p, err := policy.ParsePolicy(f.Get("rules"))
	if err != nil {
		c.showRules(w, r, s, http.StatusBadRequest, "The rules were not saved: "+err.Error(), f, nil)
		return
	}
	base, err := policy.ParsePolicy(f.Get("base"))
	if err != nil {
		c.showRules(w, r, s, http.StatusBadRequest, "The rules were not saved: the page's copy of the rules as they were is damaged; reload it.", f, nil)
		return
	}
	a, err := s.api.SetRules(r.Context(), r.PathValue("id"), control.SetRulesRequest{Rules: p, Base: &base})
	if err != nil {
		c.showRules(w, r, s, statusOf(err), "The rules were not saved: "+messageOf(err), f, nil)
		return
	}
	msg := "Rules saved."
	if len(a.Warnings) > 0 {
		msg += " Note: " + strings.Join(a.Warnings, "; ")
	}
	c.done(w, r, "/n/"+a.Network.ID+"/rules", msg)
}

// testRules asks the controller which rule decides a packet (a read; a
// POST because the API's is).
func (c *Console) testRules(w http.ResponseWriter, r *http.Request, s *signedIn) {
	f := r.PostForm
	to, err := netip.ParseAddr(strings.TrimSpace(f.Get("to")))
	if err != nil {
		c.showRules(w, r, s, http.StatusBadRequest, fmt.Sprintf("To %s is not an IP address.", quote(f.Get("to"))), f, nil)
		return
	}
	req := control.PolicyTestRequest{From: strings.TrimSpace(f.Get("from")), To: to, Proto: f.Get("proto")}
	// A member's name, as the label offers: the API takes its node ID.
	if _, err := netip.ParseAddr(req.From); err != nil && req.From != "" {
		if ms, err := s.api.Members(r.Context(), r.PathValue("id")); err == nil {
			var found []string
			for _, m := range ms {
				if strings.EqualFold(m.Hostname, req.From) {
					found = append(found, m.NodeID)
				}
			}
			switch len(found) {
			case 1:
				req.From = found[0]
			case 0:
			default:
				c.showRules(w, r, s, http.StatusBadRequest, fmt.Sprintf("%d members are named %s: give an address or a node ID.", len(found), quote(req.From)), f, nil)
				return
			}
		}
	}
	if t := strings.TrimSpace(f.Get("port")); t != "" {
		port, err := strconv.ParseUint(t, 10, 16)
		if err != nil {
			c.showRules(w, r, s, http.StatusBadRequest, fmt.Sprintf("Port %s is not a port number.", quote(t)), f, nil)
			return
		}
		req.Port = uint16(port)
	}
	d, err := s.api.TestPolicy(r.Context(), r.PathValue("id"), req)
	if err != nil {
		c.showRules(w, r, s, statusOf(err), messageOf(err), f, nil)
		return
	}
	f.Del("rules")
	c.showRules(w, r, s, http.StatusOK, "", f, &d)
}

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, s *signedIn) {
	q := control.AuditQuery{NetworkID: r.URL.Query().Get("network"), Limit: 200}
	es, err := s.api.Audit(r.Context(), q)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	names := map[string]string{}
	if ns, err := s.api.Networks(r.Context()); err == nil {
		for _, n := range ns {
			names[n.ID] = n.Name
		}
	}
	c.render(w, r, http.StatusOK, "audit", &view{Title: "Audit log", S: s, Nav: "audit", Audit: es, NetNames: names, Form: r.URL.Query(), Flash: c.takeFlash(w, r)})
}

func (c *Console) accessPage(w http.ResponseWriter, r *http.Request, s *signedIn) {
	c.showAccess(w, r, s, http.StatusOK, "", nil, nil)
}

func (c *Console) showAccess(w http.ResponseWriter, r *http.Request, s *signedIn, status int, msg string, form url.Values, nt *control.AdminToken) {
	ts, err := s.api.AdminTokens(r.Context())
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	ns, err := s.api.Networks(r.Context())
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	names := map[string]string{}
	for _, n := range ns {
		names[n.ID] = n.Name
	}
	c.render(w, r, status, "access", &view{Title: "Access", S: s, Nav: "access", AdminTokens: ts, Networks: ns, NetNames: names, NewAdmin: nt,
		Error: msg, Form: form, Flash: c.takeFlash(w, r)})
}

// adminLifetimes are the expiries an admin token can be made with here.
var adminLifetimes = map[string]time.Duration{"never": 0, "1d": 24 * time.Hour, "30d": 30 * 24 * time.Hour, "90d": 90 * 24 * time.Hour, "365d": 365 * 24 * time.Hour}

func (c *Console) createAdminToken(w http.ResponseWriter, r *http.Request, s *signedIn) {
	f := r.PostForm
	life, status, msg := c.secretForm(f, adminLifetimes)
	if msg != "" {
		c.showAccess(w, r, s, status, msg, f, nil)
		return
	}
	req := control.CreateAdminTokenRequest{Name: strings.TrimSpace(f.Get("name")), Role: control.Role(f.Get("role")), ExpiresIn: control.Duration(life)}
	if f.Get("scope") == "controller" {
		req.Scope.Controller = true
	} else if req.Scope.Networks = f["network"]; len(req.Scope.Networks) == 0 {
		c.showAccess(w, r, s, http.StatusBadRequest, "Choose at least one network for the token, or the whole controller.", f, nil)
		return
	}
	t, err := s.api.CreateAdminToken(r.Context(), req)
	if err != nil {
		c.showAccess(w, r, s, statusOf(err), messageOf(err), f, nil)
		return
	}
	c.showAccess(w, r, s, http.StatusOK, "", nil, &t)
}

func (c *Console) revokeAdminToken(w http.ResponseWriter, r *http.Request, s *signedIn) {
	t, err := s.api.RevokeAdminToken(r.Context(), r.PathValue("token"))
	if err != nil {
		c.showAccess(w, r, s, statusOf(err), messageOf(err), nil, nil)
		return
	}
	c.done(w, r, "/access", "Admin token "+t.Name+" revoked; its sessions have ended.")
}

// fail shows an error the API gave for a page's reads: a session that
// ended goes back to sign in.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *signedIn, err error) {
	status := statusOf(err)
	if status == http.StatusUnauthorized {
		c.toSignIn(w, r, err)
		return
	}
	c.render(w, r, status, "error", &view{Title: http.StatusText(status), S: s, Error: messageOf(err)})
}

// splitList splits a list typed as "a, b c".
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
}
