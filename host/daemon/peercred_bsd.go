//go:build darwin || freebsd

package daemon

import "golang.org/x/sys/unix"

// checkPeers: the kernel reports every connection's peer (LOCAL_PEERCRED,
// what getpeereid reads).
const checkPeers = true

// fdPeerUID is the effective uid of the peer of the connected unix socket
// fd, as the kernel recorded it when the peer connected (LOCAL_PEERCRED).
func fdPeerUID(fd int) (int, error) {
	cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return -1, err
	}
	return int(cred.Uid), nil
}
