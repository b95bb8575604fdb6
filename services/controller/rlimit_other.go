//go:build !linux

package controller

// raiseFileLimit is a no-op where the limit is not raised here.
func raiseFileLimit() (uint64, error) { return 1 << 20, nil }
