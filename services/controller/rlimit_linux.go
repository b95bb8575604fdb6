package controller

import "syscall"

// raiseFileLimit raises the soft limit on open files to the hard limit and
// returns it: every member holds a connection (a long-poll) open, so a
// controller of a large network needs many more than the usual 1024. The
// Go runtime does the same at start since Go 1.19; this makes it explicit
// and tells the operator what the limit is.
func raiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, err
		}
	}
	return l.Cur, nil
}
