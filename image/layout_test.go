package image

import (
	"regexp"
	"strings"
	"testing"
)

func TestNewLayout(t *testing.T) {
	for _, tc := range []struct {
		name          string
		size, esp     int64
		state, offset int64 // MiB
		err           string
	}{
		{name: "default", size: 128, esp: 96, state: 30, offset: 97},
		{name: "bigger disk", size: 1024, esp: 96, state: 926, offset: 97},
		{name: "ESP too small", size: 128, esp: 32, err: "too small for FAT32"},
		{name: "no room for state", size: 100, esp: 96, err: "state partition"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := NewLayout(tc.size, tc.esp, []byte("seed"))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.ESPStart != mib || l.StateStart != tc.offset*mib || l.StateSize != tc.state*mib {
				t.Errorf("layout %+v, want state at %d MiB of %d MiB", l, tc.offset, tc.state)
			}
			if l.StateStart+l.StateSize+mib != l.Size {
				t.Errorf("state partition ends at %d, want 1 MiB before the end %d", l.StateStart+l.StateSize, l.Size)
			}
			for _, off := range []int64{l.ESPStart, l.ESPSize, l.StateStart, l.StateSize} {
				if off%mib != 0 {
					t.Errorf("%d is not MiB aligned", off)
				}
			}
		})
	}
}

func TestGUIDs(t *testing.T) {
	a, _ := NewLayout(128, 96, []byte("one"))
	b, _ := NewLayout(128, 96, []byte("one"))
	c, _ := NewLayout(128, 96, []byte("two"))
	if a != b {
		t.Error("same seed, different layouts")
	}
	if a.DiskGUID == c.DiskGUID || a.StateGUID == c.StateGUID {
		t.Error("different seeds, same GUIDs")
	}
	re := regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`)
	for _, g := range []string{a.DiskGUID, a.ESPGUID, a.StateGUID, strings.ToUpper(a.StateUUID)} {
		if !re.MatchString(g) {
			t.Errorf("%q is not a version 4 GUID", g)
		}
	}
	if a.DiskGUID == a.ESPGUID || a.ESPGUID == a.StateGUID {
		t.Error("GUIDs repeat within one disk")
	}
	if !regexp.MustCompile(`^[0-9A-F]{8}$`).MatchString(a.ESPVolumeID) {
		t.Errorf("volume ID %q is not 8 hex digits", a.ESPVolumeID)
	}
}

func TestSfdiskScript(t *testing.T) {
	l, err := NewLayout(128, 96, []byte("seed"))
	if err != nil {
		t.Fatal(err)
	}
	got := l.SfdiskScript()
	for _, want := range []string{
		"label: gpt\n",
		"label-id: " + l.DiskGUID + "\n",
		"start=2048, size=196608, type=" + typeESP + ", uuid=" + l.ESPGUID + `, name="EFI System", attrs="LegacyBIOSBootable"` + "\n",
		"start=198656, size=61440, type=" + typeLinux + ", uuid=" + l.StateGUID + `, name="gate-state"` + "\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("sfdisk script lacks %q:\n%s", want, got)
		}
	}
}
