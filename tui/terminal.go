package tui

import (
	"reflect"
	"strconv"
	"strings"
	"unicode"
)

// What the console shows comes from the daemon, which checks what it
// takes from outside; the console still renders nothing it has not made
// safe for a terminal itself, where every string enters it (the watch and
// log answers, errors): a string with a control character or anything
// else unprintable is shown quoted, with Go escapes.

// terminal returns s as it is when every character is printable (or a
// newline: joined errors come in lines), else quoted.
func terminal(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r != '\n' && !unicode.IsPrint(r) }) < 0 {
		return s
	}
	return strconv.Quote(s)
}

// sanitize makes every string reachable from v (a pointer) terminal-safe,
// in place: through structs, pointers, slices, arrays and map values.
func sanitize(v any) { sanitizeValue(reflect.ValueOf(v)) }

func sanitizeValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			sanitizeValue(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				sanitizeValue(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			sanitizeValue(v.Index(i))
		}
	case reflect.Map:
		// Map values cannot be changed in place: each is copied,
		// made safe and put back (keys are left: none of the local
		// API's maps is keyed by text from outside).
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			sanitizeValue(e)
			v.SetMapIndex(k, e)
		}
	case reflect.String:
		if v.CanSet() {
			v.SetString(terminal(v.String()))
		}
	}
}
