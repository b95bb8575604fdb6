package cloud

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"os"
	"strconv"
	"strings"

	"github.com/gatenet/gate/services/nodeconfig"
)

// User-data formats, as ParseUserData tells them apart.
const (
	FormatEmpty       = "empty"        // nothing, or white space only
	FormatCloudConfig = "cloud-config" // "#cloud-config" first line; the Gate document is under gate:
	FormatGate        = "gate"         // a Gate document itself: YAML or JSON with version: at the top
	FormatMultipart   = "multipart"    // MIME multipart; its text/cloud-config parts are read as above
)

// UserData is what a node's user-data says to Gate.
type UserData struct {
	Format string
	Layer  *nodeconfig.Layer // nil when the user-data holds no Gate document
	Notes  []string          // what was ignored, for the log
}

// Limits of one user-data parse, over all its MIME parts and levels
// together: nested parts, base64 and gzip must not turn a few KB into
// gigabytes or hours of work.
const (
	// MaxUnpacked bounds the bytes a parse produces by decoding: gunzip,
	// base64, quoted-printable, and the reading of MIME parts, at every
	// level, all counted against one budget.
	MaxUnpacked = 4 << 20
	maxParts    = 64 // MIME parts, counted over every level
	maxDepth    = 3  // MIME levels: a multipart inside a part inside a multipart
)

// ParseUserData reads user-data as cloud-init users write it. It tells the
// formats apart the way cloud-init does, by how the data starts (after
// gunzipping it: Terraform's base64gzip is common on AWS):
//
//   - "#cloud-config": YAML whose gate: key holds a Gate document (its
//     version: may be left out); the other keys are cloud-init's, ignored
//     with a note naming them. No gate: key is not an error: the user-data
//     is for something else.
//   - "Content-Type:" or "MIME-Version:": MIME multipart, as cloud-init's
//     write-mime-multipart makes it; text/cloud-config parts (and
//     text/plain parts that start with #cloud-config) are read as above,
//     and at most one of them may hold gate:. Other parts are noted and
//     ignored: a Gate node runs no scripts.
//   - "#!", "#include", "#cloud-boothook" and the other cloud-init
//     formats: an error; a Gate node runs no scripts and fetches nothing.
//   - anything else is a Gate document (YAML or JSON) when it is a mapping
//     with a version: key, and an error otherwise.
//
// The whole parse is bounded: at most MaxUnpacked bytes produced by
// decoding, maxParts MIME parts and maxDepth levels; beyond them the
// user-data is refused with an error naming the limit. Notes are at most
// maxNotes, each short, and they, like the errors, quote what they take
// from the user-data without its control characters.
//
// name says where the user-data came from, for messages. An invalid Gate
// document is a *nodeconfig.Error naming every bad key.
func ParseUserData(name string, data []byte) (*UserData, error) {
	return (&udParse{src: nodeconfig.SourceUserData}).run(name, data)
}

// udParse is the state of one user-data parse, shared by all its levels.
type udParse struct {
	src      nodeconfig.Source
	unpacked int // bytes produced by decoding so far, against MaxUnpacked
	parts    int // MIME parts seen so far, against maxParts
	notes    notes
}

// limitError is a limit of the whole parse: it refuses the user-data, and
// is never turned into a note about one part.
type limitError struct{ msg string }

func (e *limitError) Error() string { return e.msg }

func (p *udParse) run(name string, data []byte) (*UserData, error) {
	u, err := p.parse(name, data, 0)
	if err != nil {
		return nil, cleanErr(err)
	}
	u.Notes = p.notes.result()
	if u.Layer != nil {
		cleanIssues(u.Layer.Warnings)
	}
	return u, nil
}

// read reads r to its end, at most nodeconfig.MaxSize bytes (one
// document) and within what is left of the budget, and charges what it
// read. errTooLarge: more than one document's worth.
func (p *udParse) read(name string, r io.Reader) ([]byte, error) {
	left := MaxUnpacked - p.unpacked
	b, err := io.ReadAll(io.LimitReader(r, int64(min(left, nodeconfig.MaxSize))+1))
	p.unpacked += len(b)
	switch {
	case len(b) > nodeconfig.MaxSize:
		return nil, errTooLarge
	case len(b) > left:
		return nil, &limitError{fmt.Sprintf("%s: user-data unpacks to more than %d bytes in all", name, MaxUnpacked)}
	}
	return b, err
}

var errTooLarge = fmt.Errorf("more than %d bytes", nodeconfig.MaxSize)

func (p *udParse) parse(name string, data []byte, depth int) (*UserData, error) {
	data, err := p.gunzip(name, data)
	if err != nil {
		return nil, err
	}
	text := bytes.TrimLeft(data, " \t\r\n\ufeff")
	first, _, _ := strings.Cut(string(text[:min(len(text), 200)]), "\n")
	first = strings.ToLower(strings.TrimSpace(first))
	switch {
	case len(text) == 0:
		return &UserData{Format: FormatEmpty}, nil
	case first == "#cloud-config":
		return p.cloudConfig(name, data)
	case strings.HasPrefix(first, "#cloud-config"):
		return nil, fmt.Errorf("%s: %s user-data is not supported; use #cloud-config with a gate: key", name, strconv.QuoteToASCII(cut(strings.Fields(first)[0], maxShown)))
	case strings.HasPrefix(first, "content-type:"), strings.HasPrefix(first, "mime-version:"):
		return p.multipart(name, data, depth)
	case strings.HasPrefix(first, "#!"):
		return nil, fmt.Errorf("%s: user-data is a script (%s): a Gate node runs no scripts; give a #cloud-config with a gate: key, or a Gate document (version: 1)", name, show(first))
	case strings.HasPrefix(first, "#include"), strings.HasPrefix(first, "#cloud-boothook"),
		strings.HasPrefix(first, "#part-handler"), strings.HasPrefix(first, "#upstart-job"),
		strings.HasPrefix(first, "## template:"):
		return nil, fmt.Errorf("%s: %s user-data is not supported; give a #cloud-config with a gate: key, or a Gate document (version: 1)", name, strconv.QuoteToASCII(cut(strings.Fields(first)[0], maxShown)))
	}
	if !looksLikeGate(text) {
		return nil, fmt.Errorf("%s: user-data is neither #cloud-config nor a Gate document: start it with #cloud-config and put the document under gate:, or give a document with version: 1 at the top", name)
	}
	l, err := nodeconfig.ParseLayer(p.src, name, data)
	if err != nil {
		return nil, err
	}
	return &UserData{Format: FormatGate, Layer: l}, nil
}

// looksLikeGate: JSON, or YAML with a top-level version: key.
func looksLikeGate(text []byte) bool {
	if text[0] == '{' {
		return true
	}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(nil, nodeconfig.MaxSize)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "version:") || strings.HasPrefix(line, `"version":`) {
			return true
		}
	}
	return false
}

func (p *udParse) cloudConfig(name string, data []byte) (*UserData, error) {
	l, others, err := nodeconfig.ParseEmbedded(p.src, name, data, "gate")
	if err != nil {
		return nil, err
	}
	u := &UserData{Format: FormatCloudConfig, Layer: l}
	if len(others) > 0 {
		var keys strings.Builder
		for i, k := range others {
			if keys.Len() > maxNoteLen {
				fmt.Fprintf(&keys, ", and %d more", len(others)-i)
				break
			}
			if i > 0 {
				keys.WriteString(", ")
			}
			keys.WriteString(show(k))
		}
		p.notes.addf("%s: cloud-config keys ignored (Gate reads only gate:): %s", name, keys.String())
	}
	if l == nil {
		p.notes.addf("%s: #cloud-config without a gate: key: nothing for Gate", name)
	}
	return u, nil
}

// multipart reads a MIME document: its header, and its parts, or its one
// body when it is not multipart.
func (p *udParse) multipart(name string, data []byte, depth int) (*UserData, error) {
	if depth >= maxDepth {
		return nil, &limitError{fmt.Sprintf("%s: MIME parts nested more than %d deep", name, maxDepth)}
	}
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(data)))
	hdr, err := tp.ReadMIMEHeader()
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: MIME header: %w", name, err)
	}
	ct := hdr.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, fmt.Errorf("%s: MIME Content-Type %s: %w", name, show(ct), err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		// A single part with headers: decode it and read it by its type.
		body, err := p.read(name, tp.R)
		if err != nil {
			return nil, p.tooLarge(name, "MIME body", err)
		}
		return p.onePart(name, mt, "", hdr.Get("Content-Transfer-Encoding"), body, depth)
	}
	out := &UserData{Format: FormatMultipart}
	mr := multipart.NewReader(tp.R, params["boundary"])
	for i := 1; ; i++ {
		part, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: MIME part %d: %w", name, i, err)
		}
		if p.parts++; p.parts > maxParts {
			return nil, &limitError{fmt.Sprintf("%s: more than %d MIME parts", name, maxParts)}
		}
		raw, err := p.read(name, part)
		if err != nil {
			return nil, p.tooLarge(fmt.Sprintf("%s: MIME part %d", name, i), "", err)
		}
		ct := part.Header.Get("Content-Type")
		pt, _, _ := mime.ParseMediaType(ct)
		partName := fmt.Sprintf("%s part %d", name, i)
		if f := part.FileName(); f != "" {
			partName = fmt.Sprintf("%s part %d (%s)", name, i, show(f))
		}
		u, err := p.onePart(partName, pt, ct, part.Header.Get("Content-Transfer-Encoding"), raw, depth)
		if err != nil {
			return nil, err
		}
		if u.Layer != nil {
			if out.Layer != nil {
				return nil, fmt.Errorf("%s: more than one MIME part holds a Gate document; give one", partName)
			}
			out.Layer = u.Layer
		}
	}
	return out, nil
}

// tooLarge words read's errors: errTooLarge is one part's or document's
// size; a limitError stands as it is.
func (p *udParse) tooLarge(name, what string, err error) error {
	if errors.Is(err, errTooLarge) && what == "" {
		return fmt.Errorf("%s is %w", name, err)
	}
	if errors.Is(err, errTooLarge) {
		return fmt.Errorf("%s: %s is %w", name, what, err)
	}
	var le *limitError
	if errors.As(err, &le) {
		return err
	}
	return fmt.Errorf("%s: %s: %w", name, cmp.Or(what, "reading"), err)
}

// onePart reads a part by its media type; contentType is the part's whole
// Content-Type header, whose boundary a nested multipart needs.
func (p *udParse) onePart(name, mediaType, contentType, encoding string, raw []byte, depth int) (*UserData, error) {
	data, err := p.decodeTransfer(name, encoding, raw)
	if err != nil {
		return nil, err
	}
	switch mediaType {
	case "text/cloud-config":
		if data, err = p.gunzip(name, data); err != nil {
			return nil, err
		}
		return p.cloudConfig(name, data) // the part's type says what it is; the header is optional
	case "text/plain", "text/x-not-multipart", "", "multipart/mixed", "multipart/alternative":
		mark := p.notes.mark()
		var u *UserData
		if strings.HasPrefix(mediaType, "multipart/") {
			u, err = p.multipart(name, append([]byte("Content-Type: "+contentType+"\n\n"), data...), depth+1)
		} else {
			u, err = p.parse(name, data, depth+1)
		}
		var le *limitError
		if errors.As(err, &le) {
			return nil, err // a limit of the whole parse, not this part's problem
		}
		if err != nil {
			p.notes.reset(mark)
			p.notes.addf("%s: ignored (%v)", name, err)
			return &UserData{}, nil
		}
		return u, nil
	}
	p.notes.addf("%s: %s ignored: Gate reads only cloud-config", name, show(mediaType))
	return &UserData{}, nil
}

func (p *udParse) decodeTransfer(name, encoding string, raw []byte) ([]byte, error) {
	var r io.Reader
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "7bit", "8bit", "binary":
		return raw, nil
	case "base64":
		encoding, r = "base64", base64.NewDecoder(base64.StdEncoding, bytes.NewReader(bytes.Map(dropSpace, raw)))
	case "quoted-printable":
		encoding, r = "quoted-printable", quotedprintable.NewReader(bytes.NewReader(raw))
	default:
		return nil, fmt.Errorf("%s: unknown Content-Transfer-Encoding %s", name, strconv.QuoteToASCII(cut(encoding, maxShown)))
	}
	b, err := p.read(name, r)
	if err != nil {
		return nil, p.tooLarge(name, encoding, err)
	}
	return b, nil
}

func dropSpace(r rune) rune {
	if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
		return -1
	}
	return r
}

// gunzip undoes gzip (cloud-init accepts gzipped user-data), bounded by
// the document's size and the parse's budget.
func (p *udParse) gunzip(name string, data []byte) ([]byte, error) {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		if len(data) > nodeconfig.MaxSize {
			return nil, fmt.Errorf("%s: user-data is %d bytes; the limit is %d", name, len(data), nodeconfig.MaxSize)
		}
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: gzipped user-data: %w", name, err)
	}
	out, err := p.read(name, zr)
	var le *limitError
	switch {
	case errors.Is(err, errTooLarge):
		return nil, fmt.Errorf("%s: gzipped user-data unpacks to more than %d bytes", name, nodeconfig.MaxSize)
	case errors.As(err, &le):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("%s: gzipped user-data: %w", name, err)
	}
	return out, nil
}

// ReadPreseed reads the preseed file at path, written before the image was
// uploaded. It may be in any user-data format (a Gate document, or a
// #cloud-config with gate:); its layer has source SourcePreseed. A missing
// file is not an error: it returns nil, nil.
func ReadPreseed(path string) (*UserData, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading preseed: %w", err)
	}
	return (&udParse{src: nodeconfig.SourcePreseed}).run(path, data)
}
