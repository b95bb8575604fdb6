package pid1

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPartitionByName(t *testing.T) {
	sys := t.TempDir()
	for dev, uevent := range map[string]string{
		"vda":  "MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\n",
		"vda1": "MAJOR=254\nMINOR=1\nDEVNAME=vda1\nDEVTYPE=partition\nPARTN=1\nPARTNAME=EFI System\n",
		"vda2": "MAJOR=254\nMINOR=2\nDEVNAME=vda2\nDEVTYPE=partition\nPARTN=2\nPARTNAME=gate-state\n",
		"vdb1": "DEVNAME=vdb1\nPARTNAME=gate-state-old\n",
	} {
		if err := os.MkdirAll(filepath.Join(sys, dev), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sys, dev, "uevent"), []byte(uevent), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]string{"gate-state": "vda2", "EFI System": "vda1", "nothing": ""} {
		got, err := partitionByName(sys, name)
		if err != nil || got != want {
			t.Errorf("partitionByName(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
}
