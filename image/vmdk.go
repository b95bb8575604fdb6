package image

import (
	"bytes"
	"fmt"
	"os"
)

// setVMDKContentID replaces the content ID (CID) that qemu-img draws at
// random in a VMDK's text descriptor with cid, so that the same raw image
// converts to the same VMDK bytes. The descriptor is NUL-padded text near
// the start of the file; the new line has a fixed width and must fit the
// padding.
func setVMDKContentID(path string, cid uint32) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, 64<<10)
	n, err := f.ReadAt(head, 0)
	if n == 0 {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	head = head[:n]
	fixed, err := replaceCID(head, cid)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if _, err := f.WriteAt(fixed, 0); err != nil {
		return err
	}
	return f.Close()
}

// replaceCID rewrites the "CID=" line of the descriptor in head, keeping
// head's length.
func replaceCID(head []byte, cid uint32) ([]byte, error) {
	start := bytes.Index(head, []byte("# Disk DescriptorFile"))
	if start < 0 {
		return nil, fmt.Errorf("no VMDK descriptor")
	}
	end := bytes.IndexByte(head[start:], 0)
	if end < 0 {
		return nil, fmt.Errorf("VMDK descriptor not NUL-terminated")
	}
	end += start
	room := end
	for room < len(head) && head[room] == 0 {
		room++
	}
	text := head[start:end]
	i := bytes.Index(text, []byte("\nCID="))
	if i < 0 {
		return nil, fmt.Errorf("no CID in the VMDK descriptor")
	}
	j := bytes.IndexByte(text[i+1:], '\n')
	if j < 0 {
		return nil, fmt.Errorf("CID line not terminated")
	}
	var nt []byte
	nt = append(nt, text[:i+1]...)
	nt = append(nt, fmt.Sprintf("CID=%08x", cid)...)
	nt = append(nt, text[i+1+j:]...)
	if start+len(nt) >= room {
		return nil, fmt.Errorf("new VMDK descriptor does not fit its padding")
	}
	out := append([]byte(nil), head...)
	copy(out[start:], nt)
	clear(out[start+len(nt) : room])
	return out, nil
}
