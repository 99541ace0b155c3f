package daemon

import "golang.org/x/sys/unix"

// checkPeers: the kernel reports every connection's peer (SO_PEERCRED).
const checkPeers = true

// fdPeerUID is the uid of the peer of the connected unix socket fd, as
// the kernel recorded it when the peer connected (SO_PEERCRED).
func fdPeerUID(fd int) (int, error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return -1, err
	}
	return int(cred.Uid), nil
}
