//go:build linux || darwin || freebsd

package daemon

import (
	"errors"
	"net"
)

// peerUID is the uid of the process at the other end of c, as the kernel
// recorded it when that process connected (fdPeerUID says how each kernel
// reports it).
func peerUID(c net.Conn) (int, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return -1, errors.New("not a unix socket connection")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1, err
	}
	uid, cerr := -1, error(nil)
	if err := raw.Control(func(fd uintptr) { uid, cerr = fdPeerUID(int(fd)) }); err != nil {
		return -1, err
	}
	return uid, cerr
}
