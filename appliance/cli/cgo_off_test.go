//go:build !cgo

package cli

const cgoLinked = false
