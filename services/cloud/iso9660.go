package cloud

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
)

// An ISO 9660 reader for NoCloud seeds: the volume identifier and the root
// directory's files, by Rock Ridge name (NM), else Joliet name, else the
// plain ISO name ("USER_DAT.;1" cannot say user-data, so seeds are made
// with -rock or -joliet, as cloud-init's recipe does). Layout per ECMA-119;
// Rock Ridge per RRIP 1.12 (SUSP "NM" entries); Joliet per its
// specification (supplementary descriptor, UCS-2 big-endian names).

const isoSector = 2048

func openISO(r io.ReaderAt) (*volume, error) {
	var pvd, joliet []byte
	for i := int64(16); i < 16+32; i++ {
		d, err := readAt(r, i*isoSector, isoSector)
		if err != nil || string(d[1:6]) != "CD001" {
			if i == 16 {
				return nil, errNoFS
			}
			return nil, fmt.Errorf("iso9660: volume descriptor %d: not CD001", i)
		}
		switch d[0] {
		case 1:
			if pvd == nil {
				pvd = d
			}
		case 2:
			esc := d[88:91]
			if string(esc) == "%/@" || string(esc) == "%/C" || string(esc) == "%/E" {
				joliet = d
			}
		case 255:
			i = 16 + 32
		}
	}
	if pvd == nil {
		return nil, fmt.Errorf("iso9660: no primary volume descriptor")
	}
	v := &volume{
		fs:    "iso9660",
		label: strings.TrimRight(string(pvd[40:72]), " \x00"),
		files: map[string]fileRef{},
	}
	v.read = func(ref fileRef) ([]byte, error) { return readAt(r, ref.start, int(ref.size)) }
	rr, err := isoDir(r, pvd[156:190], false, v.files)
	if err != nil {
		return nil, fmt.Errorf("iso9660: root directory: %w", err)
	}
	if !rr && joliet != nil {
		jf := map[string]fileRef{}
		if _, err := isoDir(r, joliet[156:190], true, jf); err != nil {
			return nil, fmt.Errorf("iso9660: Joliet root directory: %w", err)
		}
		v.files = jf
	}
	return v, nil
}

// isoDir reads the directory whose record is rec into files (not
// subdirectories) and says whether it found Rock Ridge names. Without them,
// names are the ISO names, lower-cased, without the ";1" version.
func isoDir(r io.ReaderAt, rec []byte, joliet bool, files map[string]fileRef) (rockRidge bool, err error) {
	le := binary.LittleEndian
	extent, size := int64(le.Uint32(rec[2:])), int64(le.Uint32(rec[10:]))
	if size > 64*isoSector {
		size = 64 * isoSector // a seed's root directory is a sector or two
	}
	dir, err := readAt(r, extent*isoSector, int(size))
	if err != nil {
		return false, err
	}
	type entry struct {
		iso, rr string
		ref     fileRef
	}
	var entries []entry
	anyRR := false
	for off := 0; off < len(dir); {
		n := int(dir[off])
		if n == 0 { // records do not cross sectors: skip to the next one
			off = (off/isoSector + 1) * isoSector
			continue
		}
		if n < 34 || off+n > len(dir) {
			return false, fmt.Errorf("directory record at %d: bad length %d", off, n)
		}
		d := dir[off : off+n]
		off += n
		nameLen := int(d[32])
		if 33+nameLen > len(d) {
			return false, fmt.Errorf("directory record: name runs past the record")
		}
		raw := d[33 : 33+nameLen]
		if nameLen == 1 && (raw[0] == 0 || raw[0] == 1) || d[25]&0x02 != 0 {
			continue // ".", "..", and directories
		}
		e := entry{ref: fileRef{start: int64(le.Uint32(d[2:])) * isoSector, size: int64(le.Uint32(d[10:]))}}
		if joliet {
			u := make([]uint16, nameLen/2)
			for i := range u {
				u[i] = binary.BigEndian.Uint16(raw[2*i:])
			}
			e.iso = string(utf16.Decode(u))
		} else {
			e.iso = strings.ToLower(string(raw))
		}
		e.iso = strings.TrimSuffix(strings.Split(e.iso, ";")[0], ".")
		su := 33 + nameLen
		if nameLen%2 == 0 {
			su++ // padding byte
		}
		if su < len(d) {
			e.rr = rockRidgeName(d[su:])
			anyRR = anyRR || e.rr != ""
		}
		entries = append(entries, e)
	}
	for _, e := range entries {
		name := e.iso
		if anyRR && e.rr != "" {
			name = e.rr
		}
		files[name] = e.ref
	}
	return anyRR, nil
}

// rockRidgeName reads the NM entries of a System Use area (a name may be
// split over several, flag bit 0 = continues).
func rockRidgeName(su []byte) string {
	var name bytes.Buffer
	for len(su) >= 4 {
		n := int(su[2])
		if n < 4 || n > len(su) {
			break
		}
		if string(su[:2]) == "NM" && n >= 5 {
			name.Write(su[5:n])
			if su[4]&0x01 == 0 {
				return name.String()
			}
		}
		su = su[n:]
	}
	return name.String()
}
