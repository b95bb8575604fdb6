package controller

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// maxBody is the largest request body the API reads, for an admin's
// request; others have a smaller limit (maxAnonBody, guardBodies).
const maxBody = 1 << 20

// readBody reads a request body of at most maxBody bytes (or the smaller
// limit guardBodies put on it) and decodes it into v.
func readBody(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		var bte *bodyTimeoutError
		switch {
		case errors.As(err, &mbe):
			return errorf(http.StatusRequestEntityTooLarge, "request body: larger than %d bytes", mbe.Limit)
		case errors.As(err, &bte):
			return errorf(http.StatusRequestTimeout, "request body: %v", bte)
		}
		return badRequest("request body: %v", err)
	}
	return decodeBody(b, v)
}

// bodyTimeoutError is a body that did not arrive within its deadline.
type bodyTimeoutError struct{ timeout time.Duration }

func (e *bodyTimeoutError) Error() string {
	return "not received within " + e.timeout.String()
}

// decodeBody decodes one JSON object into v, refusing unknown fields and
// trailing data. Its errors start with "request body:" and name the field
// at fault where they can.
func decodeBody(b []byte, v any) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return badRequest("request body: empty; want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("request body: %s", describeJSONError(err, b, v))
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("request body: unexpected data after the JSON object")
	}
	return nil
}

func describeJSONError(err error, b []byte, v any) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "invalid JSON at byte " + strconv.FormatInt(se.Offset, 10) + ": " + se.Error()
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	case errors.As(err, &te):
		if te.Field == "" {
			return "want a JSON object, got " + te.Value
		}
		return "field " + quote(te.Field) + ": want " + jsonKind(te.Type) + ", got " + te.Value
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if strings.HasPrefix(msg, "unknown field") {
		return msg
	}
	// The error came from a field's own decoder (an address, a prefix, a
	// duration), which does not know the field's name: find it.
	if f := failingField(b, v); f != "" {
		return "field " + quote(f) + ": " + msg
	}
	return msg
}

// failingField returns the JSON name of the first field of the struct v
// points to whose value in b does not decode on its own.
func failingField(b []byte, v any) string {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return ""
	}
	t = t.Elem()
	var raw map[string]json.RawMessage
	if json.Unmarshal(b, &raw) != nil {
		return ""
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		for k, val := range raw {
			if strings.EqualFold(k, name) && json.Unmarshal(val, reflect.New(f.Type).Interface()) != nil {
				return name
			}
		}
	}
	return ""
}

func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	if t.Implements(reflect.TypeFor[interface{ UnmarshalText([]byte) error }]()) ||
		reflect.PointerTo(t).Implements(reflect.TypeFor[interface{ UnmarshalText([]byte) error }]()) {
		return "a string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.String()
}

func quote(s string) string { return strconv.Quote(s) }
