package cloud

import (
	"bufio"
	"bytes"
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
// name says where the user-data came from, for messages. An invalid Gate
// document is a *nodeconfig.Error naming every bad key.
func ParseUserData(name string, data []byte) (*UserData, error) {
	return parseUserData(nodeconfig.SourceUserData, name, data, 0)
}

func parseUserData(src nodeconfig.Source, name string, data []byte, depth int) (*UserData, error) {
	data, err := gunzip(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	text := bytes.TrimLeft(data, " \t\r\n\ufeff")
	first, _, _ := strings.Cut(string(text[:min(len(text), 200)]), "\n")
	first = strings.ToLower(strings.TrimSpace(first))
	switch {
	case len(text) == 0:
		return &UserData{Format: FormatEmpty}, nil
	case first == "#cloud-config":
		return cloudConfig(src, name, data)
	case strings.HasPrefix(first, "#cloud-config"):
		return nil, fmt.Errorf("%s: %q user-data is not supported; use #cloud-config with a gate: key", name, strings.Fields(first)[0])
	case strings.HasPrefix(first, "content-type:"), strings.HasPrefix(first, "mime-version:"):
		if depth > 2 {
			return nil, fmt.Errorf("%s: MIME parts nested too deeply", name)
		}
		return parseMultipart(src, name, data, depth)
	case strings.HasPrefix(first, "#!"):
		return nil, fmt.Errorf("%s: user-data is a script (%s): a Gate node runs no scripts; give a #cloud-config with a gate: key, or a Gate document (version: 1)", name, first)
	case strings.HasPrefix(first, "#include"), strings.HasPrefix(first, "#cloud-boothook"),
		strings.HasPrefix(first, "#part-handler"), strings.HasPrefix(first, "#upstart-job"),
		strings.HasPrefix(first, "## template:"):
		return nil, fmt.Errorf("%s: %q user-data is not supported; give a #cloud-config with a gate: key, or a Gate document (version: 1)", name, strings.Fields(first)[0])
	}
	if !looksLikeGate(text) {
		return nil, fmt.Errorf("%s: user-data is neither #cloud-config nor a Gate document: start it with #cloud-config and put the document under gate:, or give a document with version: 1 at the top", name)
	}
	l, err := nodeconfig.ParseLayer(src, name, data)
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

func cloudConfig(src nodeconfig.Source, name string, data []byte) (*UserData, error) {
	l, others, err := nodeconfig.ParseEmbedded(src, name, data, "gate")
	if err != nil {
		return nil, err
	}
	u := &UserData{Format: FormatCloudConfig, Layer: l}
	if len(others) > 0 {
		u.Notes = append(u.Notes, fmt.Sprintf("%s: cloud-config keys ignored (Gate reads only gate:): %s", name, strings.Join(others, ", ")))
	}
	if l == nil {
		u.Notes = append(u.Notes, fmt.Sprintf("%s: #cloud-config without a gate: key: nothing for Gate", name))
	}
	return u, nil
}

func parseMultipart(src nodeconfig.Source, name string, data []byte, depth int) (*UserData, error) {
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(data)))
	hdr, err := tp.ReadMIMEHeader()
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: MIME header: %w", name, err)
	}
	mt, params, err := mime.ParseMediaType(hdr.Get("Content-Type"))
	if err != nil {
		return nil, fmt.Errorf("%s: MIME Content-Type %q: %w", name, hdr.Get("Content-Type"), err)
	}
	body, err := io.ReadAll(tp.R)
	if err != nil {
		return nil, fmt.Errorf("%s: reading MIME body: %w", name, err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		// A single part with headers: decode it and read it by its type.
		return onePart(src, name, mt, hdr.Get("Content-Transfer-Encoding"), body, depth)
	}
	out := &UserData{Format: FormatMultipart}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for i := 1; ; i++ {
		p, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: MIME part %d: %w", name, i, err)
		}
		raw, err := io.ReadAll(io.LimitReader(p, nodeconfig.MaxSize+1))
		if err != nil {
			return nil, fmt.Errorf("%s: MIME part %d: %w", name, i, err)
		}
		pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		partName := fmt.Sprintf("%s part %d", name, i)
		if f := p.FileName(); f != "" {
			partName = fmt.Sprintf("%s part %d (%s)", name, i, f)
		}
		u, err := onePart(src, partName, pt, p.Header.Get("Content-Transfer-Encoding"), raw, depth)
		if err != nil {
			return nil, err
		}
		out.Notes = append(out.Notes, u.Notes...)
		if u.Layer != nil {
			if out.Layer != nil {
				return nil, fmt.Errorf("%s: more than one MIME part holds a Gate document; give one", partName)
			}
			out.Layer = u.Layer
		}
	}
	return out, nil
}

func onePart(src nodeconfig.Source, name, mediaType, encoding string, raw []byte, depth int) (*UserData, error) {
	data, err := decodeTransfer(encoding, raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	switch mediaType {
	case "text/cloud-config":
		if data, err = gunzip(data); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return cloudConfig(src, name, data) // the part's type says what it is; the header is optional
	case "text/plain", "text/x-not-multipart", "", "multipart/mixed", "multipart/alternative":
		if strings.HasPrefix(mediaType, "multipart/") {
			return parseMultipart(src, name, append([]byte("Content-Type: "+mediaType+"\n\n"), data...), depth+1)
		}
		u, err := parseUserData(src, name, data, depth+1)
		if err != nil {
			return &UserData{Notes: []string{fmt.Sprintf("%s: ignored (%v)", name, err)}}, nil
		}
		return u, nil
	}
	return &UserData{Notes: []string{fmt.Sprintf("%s: %s ignored: Gate reads only cloud-config", name, mediaType)}}, nil
}

func decodeTransfer(encoding string, raw []byte) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "7bit", "8bit", "binary":
		return raw, nil
	case "base64":
		b, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, bytes.NewReader(bytes.Map(dropSpace, raw))))
		if err != nil {
			return nil, fmt.Errorf("base64: %w", err)
		}
		return b, nil
	case "quoted-printable":
		b, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return nil, fmt.Errorf("quoted-printable: %w", err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("unknown Content-Transfer-Encoding %q", encoding)
}

func dropSpace(r rune) rune {
	if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
		return -1
	}
	return r
}

// gunzip undoes gzip (cloud-init accepts gzipped user-data), bounded.
func gunzip(data []byte) ([]byte, error) {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		if len(data) > nodeconfig.MaxSize {
			return nil, fmt.Errorf("user-data is %d bytes; the limit is %d", len(data), nodeconfig.MaxSize)
		}
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("gzipped user-data: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, nodeconfig.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("gzipped user-data: %w", err)
	}
	if len(out) > nodeconfig.MaxSize {
		return nil, fmt.Errorf("gzipped user-data unpacks to more than %d bytes", nodeconfig.MaxSize)
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
	return parseUserData(nodeconfig.SourcePreseed, path, data, 0)
}
