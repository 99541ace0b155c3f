//go:build unix

package plugin

import (
	"os"
	"os/signal"
	"syscall"
	"time"
)

var (
	// hostParent is the process that started this one, taken as early as
	// possible.
	hostParent = os.Getppid()
	// hostGone receives SIGTERM, which the kernel sends a plugin of a
	// credhost host on Linux when its parent dies.
	hostGone = make(chan os.Signal, 1)
)

// init runs on the main thread, before anything else in the plugin. The
// host starts a plugin with a parent-death signal of SIGKILL, which also
// reaches a wrapper script that did not exec the plugin; but it would end
// the plugin before it could end its helpers. So a plugin of a credhost
// host (OwnGroupEnv) trades it for SIGTERM, caught by watchParent once
// Serve runs (until then, and in a program that never serves, SIGTERM
// simply ends the process). The signal is kept by the thread that set it,
// so it must be the main one.
func init() {
	if os.Getenv(OwnGroupEnv) == "1" {
		parentDeathSignal(syscall.SIGTERM)
	}
}

// watchParent ends the plugin when the process that started it is gone:
// its parent process ID then changes (to init or a subreaper), which it
// polls for; on Linux the parent-death signal (see init) says so at once.
// SIGTERM from anyone else is taken the same way: the plugin ends with its
// helpers.
//
// On the host's death it kills its process group if it leads one (the
// host starts each plugin as a group leader), or if the host said the
// group is the plugin's own (OwnGroupEnv: a wrapper script leads it),
// taking with it any helper it spawned; otherwise only itself.
func watchParent(interval time.Duration) {
	signal.Notify(hostGone, syscall.SIGTERM)
	tick := time.NewTicker(interval)
	defer tick.Stop()
wait:
	for os.Getppid() == hostParent {
		select {
		case <-hostGone:
			break wait
		case <-tick.C:
		}
	}
	if syscall.Getpgrp() == os.Getpid() || os.Getenv(OwnGroupEnv) == "1" {
		_ = syscall.Kill(0, syscall.SIGKILL)
	}
	os.Exit(1)
}
