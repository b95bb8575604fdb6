package cloud

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	"github.com/gatenet/gate/services/cloud/cloudtest"
	"github.com/gatenet/gate/services/nstest"
	"github.com/google/go-cmp/cmp"
)

// TestMain puts every test of the package in a fresh network namespace:
// the fake metadata services listen on 169.254.169.254 there, and nowhere
// else. Not being root is a failure (see nstest).
func TestMain(m *testing.M) { nstest.Main(m) }

func metadataDetector(t *testing.T) *Detector {
	return &Detector{Metadata: true, SysBlock: "-", Logf: t.Logf}
}

func TestDetectDigitalOcean(t *testing.T) {
	cloudtest.Serve(t, &cloudtest.DigitalOcean{UserData: cloudConfigDoc})
	r, err := metadataDetector(t).Detect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("DigitalOcean detected in %v", r.Elapsed)
	want := &Result{
		Kind: DigitalOcean, Where: MetadataURL, InstanceID: "2756294", Hostname: "sample-droplet", Region: "nyc3",
		UserData: []byte(cloudConfigDoc),
		NICs: []NIC{
			{MAC: "04:01:57:d1:9e:01", Role: "public", Address: netip.MustParsePrefix("192.0.2.20/24"), Gateway: netip.MustParseAddr("192.0.2.1"), Public: netip.MustParseAddr("192.0.2.20")},
			{MAC: "04:01:57:d1:9e:02", Role: "private", Address: netip.MustParsePrefix("10.132.6.205/16"), Gateway: netip.MustParseAddr("10.132.0.1")},
		},
		DNS:        []netip.Addr{netip.MustParseAddr("2001:4860:4860::8844"), netip.MustParseAddr("2001:4860:4860::8888"), netip.MustParseAddr("8.8.8.8")},
		PublicKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample test@do"},
	}
	if diff := cmp.Diff(want, r, append(cmpAddrs, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Elapsed" }, cmp.Ignore()))...); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	u, err := r.ParseUserData()
	if err != nil {
		t.Fatal(err)
	}
	if u.Layer == nil || u.Layer.Config.Hostname != "aws-gate-1" || u.Layer.Name != "user-data (digitalocean)" {
		t.Errorf("user-data layer %+v", u.Layer)
	}
	if l := r.MetadataLayer(); l == nil || l.Config.Hostname != "sample-droplet" {
		t.Errorf("metadata layer %+v", l)
	}
}

func TestDetectDigitalOceanNoUserData(t *testing.T) {
	cloudtest.Serve(t, &cloudtest.DigitalOcean{})
	r, err := metadataDetector(t).Detect(context.Background())
	if err != nil || r.Kind != DigitalOcean || r.UserData != nil {
		t.Fatalf("got %+v, %v", r, err)
	}
}

func TestDetectAWS(t *testing.T) {
	imds := &cloudtest.IMDSv2{UserData: cloudConfigDoc}
	cloudtest.Serve(t, imds)
	r, err := metadataDetector(t).Detect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("AWS detected in %v", r.Elapsed)
	want := &Result{
		Kind: AWS, Where: MetadataURL, InstanceID: "i-0123456789abcdef0", Region: "eu-north-1",
		Hostname: "ip-172-16-1-10.eu-north-1.compute.internal",
		UserData: []byte(cloudConfigDoc),
		NICs: []NIC{
			{MAC: "0e:49:61:0f:c3:11", Role: "primary", Address: netip.MustParsePrefix("172.16.1.10/24"), Gateway: netip.MustParseAddr("172.16.1.1"), Public: netip.MustParseAddr("203.0.113.7")},
			{MAC: "0e:49:61:0f:c3:22", Address: netip.MustParsePrefix("172.16.2.10/24"), Gateway: netip.MustParseAddr("172.16.2.1")},
		},
		PublicKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample gate-admin"},
	}
	if diff := cmp.Diff(want, r, append(cmpAddrs, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Elapsed" }, cmp.Ignore()))...); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	// The only request without a token is the DigitalOcean probe; IMDSv1
	// is never tried.
	if diff := cmp.Diff([]string{"/metadata/v1.json"}, imds.Unauthorized()); diff != "" {
		t.Errorf("requests without a token (-want +got)\n%s", diff)
	}
	if imds.AuthorizedGETs() == 0 {
		t.Error("no request carried the token")
	}
}

func TestDetectAWSNoUserData(t *testing.T) {
	cloudtest.Serve(t, &cloudtest.IMDSv2{})
	r, err := metadataDetector(t).Detect(context.Background())
	if err != nil || r.Kind != AWS || r.UserData != nil {
		t.Fatalf("got %+v, %v", r, err)
	}
	u, err := r.ParseUserData()
	if err != nil || u.Format != FormatEmpty || u.Layer != nil {
		t.Errorf("got %+v, %v", u, err)
	}
}

// Something answers on the address but is neither cloud: none, with a note.
func TestDetectUnknownService(t *testing.T) {
	cloudtest.Serve(t, cloudtest.JSON(map[string]string{"hello": "world"}))
	r, err := metadataDetector(t).Detect(context.Background())
	if err != nil || r.Kind != None || len(r.Notes) != 1 {
		t.Fatalf("got %+v, %v", r, err)
	}
}

// No metadata service: no route at all (the usual case on a machine that
// is not in a cloud and has no default route yet), then an on-link
// address where nothing answers ARP, so the connect has to time out.
// Only the result is asserted; the time is logged.
func TestDetectNoneIsFast(t *testing.T) {
	nstest.Current(t)
	d := metadataDetector(t)
	r, err := d.Detect(context.Background())
	if err != nil || r.Kind != None {
		t.Fatalf("no route: got %+v, %v", r, err)
	}
	t.Logf("no route to 169.254.169.254: none in %v", r.Elapsed)

	peer := nstest.New(t)
	nstest.Veth(t, "md0", "md1", peer)
	nstest.Run(t, "ip", "addr", "add", "169.254.0.2/16", "dev", "md0")
	r, err = d.Detect(context.Background())
	if err != nil || r.Kind != None {
		t.Fatalf("silent link: got %+v, %v", r, err)
	}
	t.Logf("169.254.169.254 on a silent link: none in %v (connect timeout %v)", r.Elapsed, d.connectTimeout())
}

// Without Metadata set, a Detector never probes, even where a service is.
func TestDetectMetadataOffByDefault(t *testing.T) {
	cloudtest.Serve(t, &cloudtest.DigitalOcean{})
	r, err := (&Detector{SysBlock: "-"}).Detect(context.Background())
	if err != nil || r.Kind != None {
		t.Fatalf("got %+v, %v", r, err)
	}
}

// A NoCloud volume wins over the metadata service, which is then not
// probed.
func TestDetectNoCloudFirst(t *testing.T) {
	imds := &cloudtest.IMDSv2{}
	cloudtest.Serve(t, imds)
	sys, dev := fakeBlockDevices(t, map[string][]byte{"vdb": vfatSeed(t, "cidata", 2<<20, "")})
	d := &Detector{Metadata: true, SysBlock: sys, DevDir: dev, Logf: t.Logf}
	r, err := d.Detect(context.Background())
	if err != nil || r.Kind != NoCloud {
		t.Fatalf("got %+v, %v", r, err)
	}
	if len(imds.Unauthorized()) != 0 || imds.Tokens() != 0 {
		t.Error("the metadata service was probed")
	}
	if !slices.Equal(r.PublicKeys, []string{"ssh-ed25519 AAAA seed"}) {
		t.Errorf("keys %q", r.PublicKeys)
	}
}
