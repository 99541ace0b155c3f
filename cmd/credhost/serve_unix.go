//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// stopSignals end `credhost serve` gracefully.
var stopSignals = []os.Signal{syscall.SIGTERM, os.Interrupt}

// notifyHangup sends the reload signal (HUP) to c.
func notifyHangup(c chan<- os.Signal) { signal.Notify(c, syscall.SIGHUP) }
