package plugin

import (
	"os"
	"syscall"
	"time"
)

// watchParent ends the plugin when the process that started it is gone:
// it waits on a handle to the parent process, taken at start (Windows has
// no reparenting to watch for).
func watchParent(time.Duration) {
	const synchronize = 0x00100000
	h, err := syscall.OpenProcess(synchronize, false, uint32(os.Getppid()))
	if err != nil {
		return
	}
	defer syscall.CloseHandle(h)
	if ev, err := syscall.WaitForSingleObject(h, syscall.INFINITE); err == nil && ev == syscall.WAIT_OBJECT_0 {
		os.Exit(1)
	}
}
