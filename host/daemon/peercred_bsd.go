//go:build darwin || freebsd

package daemon

import (
	"errors"
	"net"

	"golang.org/x/sys/unix"
)

// checkPeers: the kernel reports every connection's peer (LOCAL_PEERCRED,
// what getpeereid reads).
const checkPeers = true

// peerUID is the effective uid of the process at the other end of c, as
// the kernel recorded it when that process connected (LOCAL_PEERCRED).
func peerUID(c net.Conn) (int, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return -1, errors.New("not a unix socket connection")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *unix.Xucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	}); err != nil {
		return -1, err
	}
	if cerr != nil {
		return -1, cerr
	}
	return int(cred.Uid), nil
}
