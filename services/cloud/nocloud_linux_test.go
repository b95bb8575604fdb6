package cloud

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatenet/gate/services/nodeconfig"
	"github.com/gatenet/gate/services/nstest"
	"github.com/gatenet/gate/services/state"
	"github.com/google/go-cmp/cmp"
)

// The seed's files, as cloud-init's NoCloud documentation writes them.
var seedFiles = map[string]string{
	"meta-data":      "instance-id: iid-local01\nlocal-hostname: cloudimg\npublic-keys: [\"ssh-ed25519 AAAA seed\"]\n",
	"user-data":      "#cloud-config\ngate:\n  controller: {listen: \":8443\"}\n  networks: [{join: " + netID + "}]\n",
	"network-config": "version: 2\nethernets:\n  eth0:\n    addresses: [192.168.1.10/255.255.255.0]\n    gateway4: 192.168.1.254\n",
}

func writeSeedFiles(t *testing.T, without string) string {
	t.Helper()
	dir := t.TempDir()
	for n, c := range seedFiles {
		if n != without {
			if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// vfatSeed builds a vfat image as cloud-init's documentation does:
// mkfs.vfat -n LABEL, then mcopy. size picks FAT12 (2 MiB), FAT16 (16 MiB)
// or FAT32 (40 MiB, -F 32).
func vfatSeed(t *testing.T, label string, size int64, fatBits string) []byte {
	t.Helper()
	dir := writeSeedFiles(t, "")
	img := filepath.Join(t.TempDir(), "seed.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	args := []string{"-n", label}
	if fatBits != "" {
		args = append(args, "-F", fatBits)
	}
	nstest.Run(t, "mkfs.vfat", append(args, img)...)
	cmd := exec.Command("mcopy", "-i", img, "meta-data", "user-data", "network-config", "::")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mcopy: %v\n%s", err, out)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// isoSeed builds an ISO 9660 seed with genisoimage, as cloud-init's
// documentation does (-volid cidata -joliet -rock), or with only one of
// the extensions.
func isoSeed(t *testing.T, ext ...string) []byte {
	t.Helper()
	dir := writeSeedFiles(t, "")
	img := filepath.Join(t.TempDir(), "seed.iso")
	args := append([]string{"-quiet", "-output", img, "-volid", "cidata"}, ext...)
	args = append(args, filepath.Join(dir, "meta-data"), filepath.Join(dir, "user-data"), filepath.Join(dir, "network-config"))
	nstest.Run(t, "genisoimage", args...)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeBlockDevices lays out a /sys/class/block and a /dev whose devices
// are image files, plus an empty CD drive (size 0) and a disk that holds
// no filesystem.
func fakeBlockDevices(t *testing.T, devs map[string][]byte) (sys, dev string) {
	t.Helper()
	root := t.TempDir()
	sys, dev = filepath.Join(root, "sys"), filepath.Join(root, "dev")
	devs["sda"] = make([]byte, 64<<10)
	for name, data := range devs {
		os.MkdirAll(filepath.Join(sys, name), 0o755)
		os.MkdirAll(dev, 0o755)
		os.WriteFile(filepath.Join(sys, name, "size"), []byte("1024\n"), 0o644)
		if err := os.WriteFile(filepath.Join(dev, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(sys, "sr0"), 0o755)
	os.WriteFile(filepath.Join(sys, "sr0", "size"), []byte("0\n"), 0o644)
	return sys, dev
}

func wantSeedResult(where string) *Result {
	return &Result{
		Kind: NoCloud, Where: where, InstanceID: "iid-local01", Hostname: "cloudimg",
		UserData:   []byte(seedFiles["user-data"]),
		PublicKeys: []string{"ssh-ed25519 AAAA seed"},
		NetworkConfig: map[string]nodeconfig.Interface{
			"eth0": {Address: netip.MustParsePrefix("192.168.1.10/24"), Gateway: netip.MustParseAddr("192.168.1.254")},
		},
	}
}

var ignoreElapsed = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Elapsed" }, cmp.Ignore())

func TestNoCloudVolumes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		image func(t *testing.T) []byte
		where string
	}{
		{"vfat FAT12 CIDATA", func(t *testing.T) []byte { return vfatSeed(t, "CIDATA", 2<<20, "") }, "vfat CIDATA"},
		{"vfat FAT16 cidata", func(t *testing.T) []byte { return vfatSeed(t, "cidata", 16<<20, "16") }, "vfat cidata"},
		{"vfat FAT32", func(t *testing.T) []byte { return vfatSeed(t, "CIDATA", 40<<20, "32") }, "vfat CIDATA"},
		{"iso9660 rock+joliet", func(t *testing.T) []byte { return isoSeed(t, "-joliet", "-rock") }, "iso9660 cidata"},
		{"iso9660 joliet", func(t *testing.T) []byte { return isoSeed(t, "-joliet") }, "iso9660 cidata"},
		{"iso9660 rock", func(t *testing.T) []byte { return isoSeed(t, "-rock") }, "iso9660 cidata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys, dev := fakeBlockDevices(t, map[string][]byte{"vdb": tc.image(t)})
			r, err := (&Detector{SysBlock: sys, DevDir: dev, Logf: t.Logf}).Detect(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			want := wantSeedResult(filepath.Join(dev, "vdb") + " (" + tc.where + ")")
			if diff := cmp.Diff(want, r, append(cmpAddrs, ignoreElapsed)...); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// A vfat volume with another label is not a seed.
func TestNoCloudOtherLabel(t *testing.T) {
	sys, dev := fakeBlockDevices(t, map[string][]byte{"vdb": vfatSeed(t, "EFI", 2<<20, "")})
	r, err := (&Detector{SysBlock: sys, DevDir: dev}).Detect(context.Background())
	if err != nil || r.Kind != None {
		t.Fatalf("got %+v, %v", r, err)
	}
}

func TestNoCloudCmdlineSeedDir(t *testing.T) {
	dir := writeSeedFiles(t, "network-config")
	for _, cmdline := range []string{
		"console=ttyS0 ds=nocloud;s=file://" + dir + "/;h=override quiet",
		`ds="nocloud;s=` + dir + `/;h=override"`,
		`ds=nocloud\;seedfrom=` + dir + `/\;local-hostname=override`,
	} {
		r, err := (&Detector{Cmdline: cmdline, SysBlock: "-"}).Detect(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", cmdline, err)
		}
		want := wantSeedResult(dir + "/")
		want.Hostname, want.NetworkConfig = "override", nil
		if diff := cmp.Diff(want, r, append(cmpAddrs, ignoreElapsed)...); diff != "" {
			t.Errorf("%s (-want +got)\n%s", cmdline, diff)
		}
	}
	// Asked for on the command line, a seed that is not there is an error.
	_, err := (&Detector{Cmdline: "ds=nocloud;s=/nonexistent/", SysBlock: "-"}).Detect(context.Background())
	if err == nil || !strings.Contains(err.Error(), "NoCloud seed /nonexistent/: meta-data") {
		t.Errorf("got %v", err)
	}
	for _, tc := range []struct{ cmdline, err string }{
		{"ds=nocloud;s=http://x/", "must start with / or file://"},
		{"ds=nocloud-net;s=/x/", "must start with http:// or https://"},
		{"ds=nocloud-net;s=http://x/y", "must end with '/'"},
		{"ds=nocloud;q=1", `unknown key "q"`},
		{"ds=nocloud", "no seed (s=) and no cidata volume"},
	} {
		_, err := (&Detector{Cmdline: tc.cmdline, SysBlock: "-"}).Detect(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: got %v, want %q", tc.cmdline, err, tc.err)
		}
	}
	// Another tool's datasource is not ours; an instance ID alone is a seed.
	if r, err := (&Detector{Cmdline: "ds=ec2", SysBlock: "-"}).Detect(context.Background()); err != nil || r.Kind != None {
		t.Errorf("ds=ec2: %+v, %v", r, err)
	}
	if r, err := (&Detector{Cmdline: "ds=nocloud;i=iid-x;h=hx", SysBlock: "-"}).Detect(context.Background()); err != nil || r.InstanceID != "iid-x" || r.Hostname != "hx" {
		t.Errorf("ds=nocloud;i=: %+v, %v", r, err)
	}
}

// ds=nocloud-net fetches the seed over HTTP (here from loopback).
func TestNoCloudNet(t *testing.T) {
	mux := http.NewServeMux()
	for n, c := range seedFiles {
		mux.HandleFunc("/seed/"+n, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(c)) })
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	r, err := (&Detector{Cmdline: "ds=nocloud-net;s=" + srv.URL + "/seed/", SysBlock: "-"}).Detect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantSeedResult(srv.URL+"/seed/"), r, append(cmpAddrs, ignoreElapsed)...); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	_, err = (&Detector{Cmdline: "ds=nocloud-net;s=" + srv.URL + "/nothing/", SysBlock: "-"}).Detect(context.Background())
	if err == nil || !strings.Contains(err.Error(), "meta-data") {
		t.Errorf("got %v", err)
	}
}

// A seed whose network-config is broken is found, and refused with the
// reason.
func TestNoCloudBrokenNetworkConfig(t *testing.T) {
	dir := writeSeedFiles(t, "")
	os.WriteFile(filepath.Join(dir, "network-config"), []byte("version: 2\nethernets:\n  eth0: {addresses: [300.1.1.1/24]}\n"), 0o644)
	r, err := (&Detector{Cmdline: "ds=nocloud;s=" + dir + "/", SysBlock: "-"}).Detect(context.Background())
	if err == nil || r.Kind != NoCloud || !strings.Contains(err.Error(), `ethernets.eth0.addresses[0]: "300.1.1.1/24" is not an IP address or CIDR`) {
		t.Errorf("got %+v, %v", r, err)
	}
}

func TestInstanceOncePerInstance(t *testing.T) {
	dir, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := &Result{Kind: AWS, InstanceID: "i-1", UserData: []byte("version: 1\n")}
	b, err := CheckInstance(dir, r)
	if err != nil || !b.First || b.Last != nil {
		t.Fatalf("fresh: %+v, %v", b, err)
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	if err := MarkApplied(dir, r, now); err != nil {
		t.Fatal(err)
	}
	for range 2 { // reboots of the same instance
		b, err = CheckInstance(dir, r)
		if err != nil || b.First || b.UserDataChanged || b.Last.InstanceID != "i-1" || !b.Last.Applied.Equal(now) {
			t.Fatalf("reboot: %+v, %v", b, err)
		}
	}
	edited := &Result{Kind: AWS, InstanceID: "i-1", UserData: []byte("version: 1\nhostname: x\n")}
	if b, _ = CheckInstance(dir, edited); b.First || !b.UserDataChanged {
		t.Errorf("edited user-data: %+v", b)
	}
	if b, _ = CheckInstance(dir, &Result{Kind: AWS, InstanceID: "i-2"}); !b.First {
		t.Errorf("new instance: %+v", b)
	}
	if b, _ = CheckInstance(dir, &Result{Kind: None}); b.First {
		t.Errorf("no source: %+v", b)
	}
	if err := MarkApplied(dir, &Result{Kind: None}, now); err == nil {
		t.Error("marked a result without an instance ID")
	}
}
