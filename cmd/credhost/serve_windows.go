package main

import (
	"os"
)

// stopSignals end `credhost serve` gracefully: Windows delivers Ctrl-C
// (and a console close) as an interrupt.
var stopSignals = []os.Signal{os.Interrupt}

// notifyHangup: Windows has no hangup signal; restart the daemon to load
// a changed config.
func notifyHangup(chan<- os.Signal) {}
