//go:build unix

package plugin

import (
	"os"
	"syscall"
	"time"
)

// watchParent ends the plugin when the process that started it is gone:
// its parent process ID then changes (to init or a subreaper). It polls,
// because the alternatives fail in Go: a parent-death signal (Linux
// PR_SET_PDEATHSIG) fires when the parent *thread* that forked ends, and
// Go's runtime ends threads on its own; a pipe whose EOF means "the host
// died" needs the host's help, and its write end leaks into every other
// child the host starts. A poll costs one cheap system call every
// interval and works on every Unix.
//
// On the host's death it kills its process group if it leads one (the
// host starts each plugin as a group leader), taking with it any helper it
// spawned; otherwise only itself.
func watchParent(interval time.Duration) {
	parent := os.Getppid()
	for {
		time.Sleep(interval)
		if os.Getppid() != parent {
			break
		}
	}
	if syscall.Getpgrp() == os.Getpid() {
		_ = syscall.Kill(0, syscall.SIGKILL)
	}
	os.Exit(1)
}
