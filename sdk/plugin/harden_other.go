//go:build unix && !linux

package plugin

import "syscall"

// notDumpable has no equivalent here beyond RLIMIT_CORE.
func notDumpable() {}

// parentDeathSignal: no such signal here; watchParent polls instead.
func parentDeathSignal(syscall.Signal) {}
