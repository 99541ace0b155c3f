package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/credhost/credhost/sdk"
)

// Check reports, for `credhost doctor`, which members answer, whether the
// user is let in, and whether the key holds a credential.
func (p *provider) Check(ctx context.Context) ([]sdk.Finding, error) {
	cli, s, err := p.client(ctx)
	if err != nil {
		return []sdk.Finding{{Severity: sdk.SeverityError, Message: err.Error(), Fix: fixFor(s, err)}}, nil
	}
	var out []sdk.Finding
	// Every member at once, so members that are down cost one call
	// timeout, not one each.
	answers := make([]error, len(s.endpoints))
	var wg sync.WaitGroup
	for i, ep := range s.endpoints {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, s.callTimeout)
			defer cancel()
			_, answers[i] = cli.Status(cctx, ep)
		})
	}
	wg.Wait()
	var down []string
	for i, err := range answers {
		if err != nil {
			down = append(down, fmt.Sprintf("%s (%v)", s.endpoints[i], err))
		}
	}
	switch {
	case len(down) == len(s.endpoints):
		return append(out, sdk.Finding{Severity: sdk.SeverityError,
			Message: "no etcd member answers: " + strings.Join(down, "; "),
			Fix:     "check the endpoints, the network and the members' health (etcdctl endpoint health)"}), nil
	case len(down) > 0:
		out = append(out, sdk.Finding{Severity: sdk.SeverityWarning,
			Message: fmt.Sprintf("%d of %d etcd members do not answer: %s", len(down), len(s.endpoints), strings.Join(down, "; ")),
			Fix:     "the cluster works while a majority answers; bring the others back (etcdctl endpoint health)"})
	default:
		out = append(out, sdk.Finding{Severity: sdk.SeverityOK, Message: fmt.Sprintf("all %d etcd members answer", len(s.endpoints))})
	}
	if _, err := p.Read(ctx); err != nil {
		sev := sdk.SeverityError
		if errors.Is(err, sdk.ErrNotFound) {
			sev = sdk.SeverityWarning
		}
		return append(out, sdk.Finding{Severity: sev, Message: err.Error(), Fix: fixFor(s, err)}), nil
	}
	who := "etcd"
	if s.username != "" {
		who = fmt.Sprintf("etcd (as user %q)", s.username)
	}
	return append(out, sdk.Finding{Severity: sdk.SeverityOK, Message: fmt.Sprintf("%s key %s holds a credential", who, s.key)}), nil
}

// fixFor says what to do about err.
func fixFor(s *settings, err error) string {
	if s == nil {
		return ""
	}
	if errors.Is(err, sdk.ErrNotFound) {
		return sdk.Hint(err)
	}
	var ee *etcdErr
	if errors.As(err, &ee) {
		switch ee.kind {
		case failAuth:
			return fmt.Sprintf("check username %q and that $%s holds its password (and is listed in the provider's env)", s.username, s.passwordEnv)
		case failPermission:
			return fmt.Sprintf("grant the user's role readwrite on %s, %s%s and the prefix %s", s.key, s.key, refreshingSuffix, s.lockKey)
		case failUnreachable:
			return "check the endpoints, the network and the members' health (etcdctl endpoint health)"
		}
		return "check the endpoints and the TLS files (ca_file, cert_file, key_file)"
	}
	return "fix the document under " + s.key + ", or put a fresh one there after logging in"
}
