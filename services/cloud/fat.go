package cloud

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
)

// A FAT reader for NoCloud seeds: the label and the root directory's
// files, with long (VFAT) names, on FAT12, FAT16 and FAT32. Why not a
// library: go-diskfs reads FAT32 only, and `mkfs.vfat -n cidata` on a
// small image (cloud-init's own recipe) makes FAT12. Layout per
// Microsoft's "FAT: General Overview of On-Disk Format".

type fat struct {
	r           io.ReaderAt
	bits        int   // 12, 16 or 32
	bps         int64 // bytes per sector
	clusterSize int64
	fatStart    int64 // byte offset of the first FAT
	dataStart   int64 // byte offset of cluster 2
	clusters    uint32
}

func openFAT(r io.ReaderAt) (*volume, error) {
	bs, err := readAt(r, 0, 512)
	if err != nil {
		return nil, errNoFS
	}
	le := binary.LittleEndian
	bps := int64(le.Uint16(bs[11:]))
	spc := int64(bs[13])
	rsvd := int64(le.Uint16(bs[14:]))
	nfats := int64(bs[16])
	rootEnts := int64(le.Uint16(bs[17:]))
	tot := int64(le.Uint16(bs[19:]))
	fatSz := int64(le.Uint16(bs[22:]))
	if tot == 0 {
		tot = int64(le.Uint32(bs[32:]))
	}
	fat32 := fatSz == 0
	if fat32 {
		fatSz = int64(le.Uint32(bs[36:]))
	}
	if bs[510] != 0x55 || bs[511] != 0xAA || (bs[0] != 0xEB && bs[0] != 0xE9) ||
		(bps != 512 && bps != 1024 && bps != 2048 && bps != 4096) ||
		spc == 0 || spc&(spc-1) != 0 || rsvd == 0 || nfats == 0 || fatSz == 0 {
		return nil, errNoFS
	}
	rootSecs := (rootEnts*32 + bps - 1) / bps
	meta := rsvd + nfats*fatSz + rootSecs
	if tot <= meta {
		return nil, fmt.Errorf("vfat: %d sectors, fewer than its own tables", tot)
	}
	f := &fat{
		r: r, bps: bps, clusterSize: bps * spc,
		fatStart: rsvd * bps, dataStart: meta * bps,
		clusters: uint32((tot - meta) / spc),
	}
	labelOff := 43
	switch {
	case f.clusters < 4085:
		f.bits = 12
	case f.clusters < 65525:
		f.bits = 16
	default:
		f.bits, labelOff = 32, 71
	}
	if (f.bits == 32) != fat32 {
		return nil, fmt.Errorf("vfat: FAT%d by cluster count, but the boot sector says otherwise", f.bits)
	}
	var root []byte
	if f.bits == 32 {
		root, err = f.chain(le.Uint32(bs[44:]), min(64*f.clusterSize, 1<<20))
	} else {
		root, err = readAt(r, (rsvd+nfats*fatSz)*bps, int(rootEnts*32))
	}
	if err != nil {
		return nil, fmt.Errorf("vfat: root directory: %w", err)
	}
	v := &volume{fs: "vfat", files: map[string]fileRef{}}
	v.read = func(ref fileRef) ([]byte, error) {
		b, err := f.chain(uint32(ref.start), ref.size)
		if err != nil {
			return nil, err
		}
		return b[:ref.size], nil
	}
	dirLabel := f.readDir(root, v.files)
	v.label = cleanLabel(dirLabel)
	if v.label == "" {
		v.label = cleanLabel(string(bs[labelOff : labelOff+11]))
	}
	return v, nil
}

func cleanLabel(s string) string {
	s = strings.TrimRight(s, " \x00")
	if s == "NO NAME" {
		return ""
	}
	return s
}

// next returns the FAT entry of cluster n.
func (f *fat) next(n uint32) (uint32, error) {
	switch f.bits {
	case 12:
		b, err := readAt(f.r, f.fatStart+int64(n+n/2), 2)
		if err != nil {
			return 0, err
		}
		v := uint32(binary.LittleEndian.Uint16(b))
		if n&1 == 1 {
			return v >> 4, nil
		}
		return v & 0xFFF, nil
	case 16:
		b, err := readAt(f.r, f.fatStart+int64(n)*2, 2)
		if err != nil {
			return 0, err
		}
		return uint32(binary.LittleEndian.Uint16(b)), nil
	}
	b, err := readAt(f.r, f.fatStart+int64(n)*4, 4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b) & 0x0FFFFFFF, nil
}

func (f *fat) eoc(v uint32) bool {
	switch f.bits {
	case 12:
		return v >= 0xFF8
	case 16:
		return v >= 0xFFF8
	}
	return v >= 0x0FFFFFF8
}

// chain reads up to max bytes of the cluster chain starting at c.
func (f *fat) chain(c uint32, max int64) ([]byte, error) {
	var out []byte
	for int64(len(out)) < max {
		if c < 2 || c >= f.clusters+2 {
			return nil, fmt.Errorf("cluster %d outside the volume", c)
		}
		b, err := readAt(f.r, f.dataStart+int64(c-2)*f.clusterSize, int(f.clusterSize))
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
		n, err := f.next(c)
		if err != nil {
			return nil, err
		}
		if f.eoc(n) {
			break
		}
		c = n
	}
	return out, nil
}

// readDir lists a directory's files (not subdirectories) into files, by
// long name when there is one, and returns the volume label entry.
func (f *fat) readDir(dir []byte, files map[string]fileRef) (label string) {
	le := binary.LittleEndian
	lfn := map[int][]uint16{}
	var lfnSum byte
	for off := 0; off+32 <= len(dir); off += 32 {
		e := dir[off : off+32]
		attr := e[11]
		switch {
		case e[0] == 0x00:
			return label
		case e[0] == 0xE5:
			clear(lfn)
			continue
		case attr&0x3F == 0x0F: // a long-name piece
			seq := int(e[0] & 0x1F)
			if e[0]&0x40 != 0 {
				clear(lfn)
			}
			var u []uint16
			for _, r := range [][2]int{{1, 11}, {14, 26}, {28, 32}} {
				for i := r[0]; i < r[1]; i += 2 {
					u = append(u, le.Uint16(e[i:]))
				}
			}
			lfn[seq], lfnSum = u, e[13]
			continue
		case attr&0x08 != 0:
			label = string(e[:11])
			clear(lfn)
			continue
		}
		short := shortName(e)
		name := short
		if len(lfn) > 0 && checksum(e[:11]) == lfnSum {
			var u []uint16
			for i := 1; i <= len(lfn); i++ {
				u = append(u, lfn[i]...)
			}
			for i, c := range u {
				if c == 0 {
					u = u[:i]
					break
				}
			}
			name = string(utf16.Decode(u))
		}
		clear(lfn)
		if attr&0x10 != 0 || name == "" {
			continue
		}
		first := uint32(le.Uint16(e[20:]))<<16 | uint32(le.Uint16(e[26:]))
		files[name] = fileRef{start: int64(first), size: int64(le.Uint32(e[28:]))}
	}
	return label
}

// shortName renders an 8.3 entry, honouring the lower-case flags that
// Windows NT and Linux's vfat set for names like "user.txt".
func shortName(e []byte) string {
	base := []byte(strings.TrimRight(string(e[:8]), " "))
	ext := []byte(strings.TrimRight(string(e[8:11]), " "))
	if len(base) > 0 && base[0] == 0x05 {
		base[0] = 0xE5
	}
	if e[12]&0x08 != 0 {
		base = []byte(strings.ToLower(string(base)))
	}
	if e[12]&0x10 != 0 {
		ext = []byte(strings.ToLower(string(ext)))
	}
	if len(ext) == 0 {
		return string(base)
	}
	return string(base) + "." + string(ext)
}

func checksum(short []byte) byte {
	var sum byte
	for _, c := range short {
		sum = (sum&1)<<7 + sum>>1 + c
	}
	return sum
}
