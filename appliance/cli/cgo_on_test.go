//go:build cgo

package cli

// cgoLinked: this test binary has cgo, under which the Go runtime cannot
// change every thread's capabilities (AllThreadsSyscall).
const cgoLinked = true
