package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/gatenet/gate/services/nodeconfig"
)

// errNotFound is a 404 from the metadata service: the item is absent
// (AWS answers 404 for /latest/user-data when there is none).
var errNotFound = errors.New("not found")

type metadataClient struct {
	base  string
	http  *http.Client
	token string // AWS IMDSv2 session token
	// failed: a request got a server error (5xx), "too many requests"
	// (429), or no answer (timeout, reset) from a service that accepted
	// the connection: it is there but not serving now, which is worth
	// asking again later.
	failed bool
}

// do sends one request and returns the body of a 200 answer, at most
// limit bytes of it (a larger answer is an error).
func (m *metadataClient) do(ctx context.Context, method, path string, limit int, hdr map[string]string, seen ...func(http.Header)) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, m.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if m.token != "" {
		req.Header.Set(awsTokenHeader, m.token)
	}
	resp, err := m.http.Do(req)
	if err != nil {
		m.failed = m.failed || ctx.Err() == nil
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	for _, f := range seen {
		f(resp.Header)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading: %w", method, path, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%s %s: %w", method, path, errNotFound)
	case resp.StatusCode != http.StatusOK:
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			m.failed = true
		}
		return nil, fmt.Errorf("%s %s: %s", method, path, resp.Status)
	case len(body) > limit:
		return nil, fmt.Errorf("%s %s: answer larger than %d bytes", method, path, limit)
	}
	return body, nil
}

// get asks for one meta-data item: a few hundred bytes on AWS, at most
// maxItem.
func (m *metadataClient) get(ctx context.Context, path string) ([]byte, error) {
	return m.do(ctx, http.MethodGet, path, maxItem, nil)
}

// getDocument asks for a document (DigitalOcean's metadata, user-data, a
// NoCloud seed's file): at most nodeconfig.MaxSize.
func (m *metadataClient) getDocument(ctx context.Context, path string) ([]byte, error) {
	return m.do(ctx, http.MethodGet, path, nodeconfig.MaxSize, nil)
}

// optional turns a 404 into "absent".
func optional(b []byte, err error) ([]byte, error) {
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	return b, err
}

// doMetadata is /metadata/v1.json as DigitalOcean serves it (its API
// reference, and the sample cloud-init's tests captured from a droplet:
// droplet_id is a number there and a string here, public_keys a list or a
// single string).
type doMetadata struct {
	DropletID  json.RawMessage          `json:"droplet_id"`
	Hostname   string                   `json:"hostname"`
	Region     string                   `json:"region"`
	PublicKeys json.RawMessage          `json:"public_keys"`
	Interfaces map[string][]doInterface `json:"interfaces"`
	DNS        struct {
		Nameservers []string `json:"nameservers"`
	} `json:"dns"`
}

type doInterface struct {
	MAC        string  `json:"mac"`
	Type       string  `json:"type"`
	IPv4       *doAddr `json:"ipv4"`
	AnchorIPv4 *doAddr `json:"anchor_ipv4"`
}

type doAddr struct {
	IPAddress string `json:"ip_address"`
	Netmask   string `json:"netmask"`
	Gateway   string `json:"gateway"`
}

// digitalOcean returns nil, nil when the service is not DigitalOcean's.
func (m *metadataClient) digitalOcean(ctx context.Context) (*Result, error) {
	body, err := m.getDocument(ctx, "/metadata/v1.json")
	if err != nil {
		return nil, nil // AWS answers 401 or 404 here
	}
	// The API reference shows the document inside a JSON array; droplets
	// serve the object. Take either.
	if t := strings.TrimSpace(string(body)); strings.HasPrefix(t, "[") {
		var list []json.RawMessage
		if json.Unmarshal(body, &list) != nil || len(list) == 0 {
			return nil, nil
		}
		body = list[0]
	}
	var md doMetadata
	if err := json.Unmarshal(body, &md); err != nil {
		return nil, nil
	}
	if t := strings.TrimSpace(string(md.DropletID)); t == "" || t == "null" {
		return nil, nil
	}
	// A droplet ID is a number, served as one or as a string of digits.
	var id json.Number
	if json.Unmarshal(md.DropletID, &id) != nil || !digits(id.String()) || len(id) > 20 {
		return &Result{Kind: DigitalOcean, Where: m.base}, fmt.Errorf("DigitalOcean metadata: droplet_id %s is not a droplet ID (a number)", show(string(md.DropletID)))
	}
	r := &Result{Kind: DigitalOcean, Where: m.base, InstanceID: id.String(), Hostname: md.Hostname, Region: md.Region}
	var one string
	if json.Unmarshal(md.PublicKeys, &r.PublicKeys) != nil && json.Unmarshal(md.PublicKeys, &one) == nil && one != "" {
		r.PublicKeys = []string{one}
	}
	for _, s := range md.DNS.Nameservers {
		if len(r.DNS) == maxDNS {
			r.Notes = append(r.Notes, fmt.Sprintf("DigitalOcean metadata: DNS servers after the first %d ignored", maxDNS))
			break
		}
		if a, err := netip.ParseAddr(s); err == nil {
			r.DNS = append(r.DNS, a)
		}
	}
	for _, role := range []string{"public", "private"} {
		for k, i := range md.Interfaces[role] {
			if len(r.NICs) == maxNICs {
				r.Notes = append(r.Notes, fmt.Sprintf("DigitalOcean metadata: NICs after the first %d ignored", maxNICs))
				break
			}
			nic := NIC{Role: role}
			nic.MAC, _ = normalMAC(i.MAC)
			if i.IPv4 != nil {
				p, err := hostPrefix(i.IPv4.IPAddress, i.IPv4.Netmask)
				if err != nil {
					r.Notes = append(r.Notes, fmt.Sprintf("DigitalOcean %s interface %d (MAC %s): %v", role, k, show(i.MAC), err))
					continue
				}
				nic.Address = p
				nic.Gateway, _ = netip.ParseAddr(i.IPv4.Gateway)
				if role == "public" {
					nic.Public = p.Addr()
				}
			}
			r.NICs = append(r.NICs, nic)
		}
	}
	ud, err := optional(m.getDocument(ctx, "/metadata/v1/user-data"))
	if err != nil {
		return r, fmt.Errorf("DigitalOcean user-data: %w", err)
	}
	if len(ud) > 0 {
		r.UserData = ud
	}
	return r, nil
}

const (
	awsTokenHeader = "X-aws-ec2-metadata-token"
	awsTTLHeader   = "X-aws-ec2-metadata-token-ttl-seconds"
)

// aws returns nil, nil when the service is not AWS IMDSv2. IMDSv2 answers
// the token request with the token and echoes its TTL in a header (the AWS
// SDKs cache tokens by it), and instance IDs start with "i-": either will
// do, so that an answer to everything is not taken for AWS.
func (m *metadataClient) aws(ctx context.Context) (*Result, error) {
	var ttl string
	tok, err := m.do(ctx, http.MethodPut, "/latest/api/token", maxToken, map[string]string{awsTTLHeader: "300"}, func(h http.Header) { ttl = h.Get(awsTTLHeader) })
	if err != nil || !isToken(tok) {
		return nil, nil // it goes into every request's header: printable ASCII, no spaces, at most maxToken
	}
	m.token = string(tok)
	md := func(path string) (string, error) {
		b, err := m.get(ctx, "/latest/meta-data/"+path)
		return strings.TrimSpace(string(b)), err
	}
	opt := func(path string) (string, error) {
		b, err := optional(m.get(ctx, "/latest/meta-data/"+path))
		return strings.TrimSpace(string(b)), err
	}
	r := &Result{Kind: AWS, Where: m.base}
	if r.InstanceID, err = md("instance-id"); err != nil {
		if ttl == "" {
			return nil, nil
		}
		return r, fmt.Errorf("AWS metadata: %w", err)
	}
	if ttl == "" && !strings.HasPrefix(r.InstanceID, "i-") {
		return nil, nil
	}
	if r.Region, err = opt("placement/region"); err != nil {
		return r, fmt.Errorf("AWS metadata: %w", err)
	}
	if r.Hostname, err = opt("local-hostname"); err != nil {
		return r, fmt.Errorf("AWS metadata: %w", err)
	}
	primary, err := md("mac")
	if err != nil {
		return r, fmt.Errorf("AWS metadata: %w", err)
	}
	macs, err := md("network/interfaces/macs/")
	if err != nil {
		return r, fmt.Errorf("AWS metadata: %w", err)
	}
	for _, line := range strings.Fields(macs) {
		if len(r.NICs) == maxNICs { // each costs three requests
			r.Notes = append(r.Notes, fmt.Sprintf("AWS metadata: NICs after the first %d ignored", maxNICs))
			break
		}
		mac := strings.TrimSuffix(line, "/")
		nic, err := m.awsNIC(ctx, mac, opt)
		if err != nil {
			return r, fmt.Errorf("AWS metadata: interface %s: %w", show(mac), err)
		}
		if strings.EqualFold(mac, primary) {
			nic.Role = "primary"
		}
		r.NICs = append(r.NICs, nic)
	}
	keys, err := opt("public-keys/")
	if err != nil {
		return r, fmt.Errorf("AWS metadata: %w", err)
	}
	asked := 0
	for _, line := range strings.Split(keys, "\n") {
		idx, _, ok := strings.Cut(line, "=")
		if !ok || !digits(idx) {
			continue
		}
		if asked++; asked > maxKeys { // each costs a request
			r.Notes = append(r.Notes, fmt.Sprintf("AWS metadata: public keys after the first %d ignored", maxKeys))
			break
		}
		k, err := opt("public-keys/" + url.PathEscape(idx) + "/openssh-key")
		if err != nil {
			return r, fmt.Errorf("AWS metadata: %w", err)
		}
		if k != "" {
			r.PublicKeys = append(r.PublicKeys, k)
		}
	}
	if r.UserData, err = optional(m.getDocument(ctx, "/latest/user-data")); err != nil {
		return r, fmt.Errorf("AWS user-data: %w", err)
	}
	return r, nil
}

func (m *metadataClient) awsNIC(ctx context.Context, mac string, opt func(string) (string, error)) (NIC, error) {
	nic := NIC{}
	var err error
	if nic.MAC, err = normalMAC(mac); err != nil {
		return nic, err
	}
	base := "network/interfaces/macs/" + url.PathEscape(mac) + "/"
	ips, err := opt(base + "local-ipv4s")
	if err != nil {
		return nic, err
	}
	cidr, err := opt(base + "subnet-ipv4-cidr-block")
	if err != nil {
		return nic, err
	}
	pub, err := opt(base + "public-ipv4s")
	if err != nil {
		return nic, err
	}
	if f := strings.Fields(ips); len(f) > 0 {
		a, aerr := netip.ParseAddr(f[0])
		sub, serr := netip.ParsePrefix(cidr)
		if aerr == nil && serr == nil {
			nic.Address = netip.PrefixFrom(a, sub.Bits())
			// AWS reserves the subnet's first host address for the VPC
			// router: it is every subnet's gateway.
			nic.Gateway = sub.Masked().Addr().Next()
		}
	}
	if f := strings.Fields(pub); len(f) > 0 {
		nic.Public, _ = netip.ParseAddr(f[0])
	}
	return nic, nil
}

func hostPort(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("metadata URL %q: want http://HOST[:PORT]", base)
	}
	if u.Port() == "" {
		return u.Host + ":80", nil
	}
	return u.Host, nil
}

// digits says whether s is a non-empty string of ASCII digits.
func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isToken: an IMDSv2 token fit for a header, printable ASCII without
// spaces, at most maxToken bytes.
func isToken(b []byte) bool {
	if len(b) == 0 || len(b) > maxToken {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}
