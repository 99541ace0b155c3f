package keychain

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"unicode/utf8"
)

// securityTool is the macOS Keychain driven through Apple's `security`
// command, reading and writing exactly what Claude Code reads and writes:
//
//   - read: `security find-generic-password -a ACCOUNT -w -s SERVICE`, the
//     client's own command. `-w` prints the secret and a newline, or, when
//     any byte of it is not printable ASCII, every byte as two lowercase hex
//     digits (Apple's keychain_find.c); credhost decodes that form.
//   - write: `security -i` with `add-generic-password -U -a ACCOUNT -s
//     SERVICE -X HEX` on its standard input, as the client does for any
//     document that fits (it falls back to putting the hex in argv, which
//     credhost never does: the secret must not be a process argument). The
//     item then holds the plain JSON document, not go-keyring's
//     "go-keyring-base64:" form, so the client's JSON.parse reads it.
//
// Why the command and not Security.framework through purego: the command is
// what the client itself uses, so the item's access list names the same
// trusted application (/usr/bin/security) for both and neither meets a
// keychain prompt for an item the other wrote; it needs no cgo and no
// dynamic loading, so cross-builds from Linux keep working; and all of it
// but the exec is plain text, tested on Linux against a fake `security`.
// Its one limit is the length of an interactive line (see maxLine).
type securityTool struct {
	// path is the security executable: /usr/bin/security on macOS, a fake
	// in tests.
	path string
	// env, when set, is added to the command's environment (tests point the
	// fake at its store with it).
	env []string
}

// command is one run of the tool.
func (s securityTool) command(args ...string) *exec.Cmd {
	cmd := exec.Command(s.path, args...)
	if s.env != nil {
		cmd.Env = append(os.Environ(), s.env...)
	}
	return cmd
}

// maxLine is the longest command line `security -i` reads whole: it reads
// stdin into a 4096-byte buffer (MAX_LINE_LEN, NUL included) and runs any
// longer line as two commands, the first with the secret cut short.
const maxLine = 4095

// Exit statuses of `security` (the low byte of the OSStatus).
const (
	exitItemNotFound          = 44 // errSecItemNotFound, -25300
	exitInteractionNotAllowed = 36 // errSecInteractionNotAllowed, -25308: locked, no GUI
)

// Get returns the secret of (service, account): ErrNoItem when there is
// none, an error wrapping ErrUnavailable when the keychain cannot answer.
func (s securityTool) Get(service, account string) (string, error) {
	cmd := s.command("find-generic-password", "-a", account, "-w", "-s", service)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && exit.ExitCode() == exitItemNotFound:
		return "", ErrNoItem
	case errors.As(err, &exit) && exit.ExitCode() == exitInteractionNotAllowed:
		return "", fmt.Errorf("%w: the keychain is locked and cannot prompt here (security exit %d)", ErrUnavailable, exitInteractionNotAllowed)
	case err != nil:
		return "", fmt.Errorf("%w: %s find-generic-password: %v%s", ErrUnavailable, s.path, err, firstLine(stderr.String()))
	}
	return decodeFound(stdout.String()), nil
}

// decodeFound turns `security -w` output back into the secret: the trailing
// newline goes, and the hex form is decoded. security prints hex exactly
// when some byte is not printable, so hex that decodes to printable text
// only is a secret that happens to be hex digits, kept as printed.
func decodeFound(out string) string {
	out = strings.TrimSuffix(out, "\n")
	if len(out) == 0 || len(out)%2 != 0 {
		return out
	}
	raw, err := hex.DecodeString(out)
	if err != nil {
		return out
	}
	for _, c := range raw {
		if !printable(c) {
			return string(raw)
		}
	}
	return out
}

// printable is C's isprint in the C locale, which security uses.
func printable(c byte) bool { return c >= 0x20 && c <= 0x7e }

// Set stores secret as the item's data, creating or updating it, through
// security's standard input; nothing secret is a process argument.
func (s securityTool) Set(service, account, secret string) error {
	line, err := addCommand(service, account, secret)
	if err != nil {
		return err
	}
	cmd := s.command("-i")
	cmd.Stdin = strings.NewReader(line)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if err == nil && strings.Contains(stderr.String(), "returned") {
		// security -i exits with the last command's status, but reports
		// each failure on stderr as "add-generic-password: returned N".
		err = errors.New("the command failed")
	}
	if err != nil {
		return fmt.Errorf("%s -i add-generic-password: %v%s", s.path, err, firstLine(stderr.String()))
	}
	return nil
}

// addCommand is the one line `security -i` runs to write the item. The
// data goes as hex (-X), as Claude Code writes it, so no byte of it needs
// quoting. A JSON document is first made compact and pure ASCII (\u escapes):
// `security -w` would print anything else as hex, which the client's
// JSON.parse cannot read.
func addCommand(service, account, secret string) (string, error) {
	data := []byte(secret)
	if json.Valid(data) {
		var b bytes.Buffer
		if err := json.Compact(&b, data); err != nil {
			return "", fmt.Errorf("compact the credentials document: %w", err)
		}
		data = asciiJSON(b.Bytes())
	}
	for _, v := range []string{service, account} {
		if strings.ContainsAny(v, "\n\r\x00") {
			return "", fmt.Errorf("keychain service and account cannot hold a line break or NUL")
		}
	}
	line := commandPrefix(service, account) + hex.EncodeToString(data) + `"`
	if len(line) > maxLine {
		return "", fmt.Errorf("the secret is %d bytes; through security's standard input the keychain item takes at most %d for this service and account (credhost never passes a secret as a process argument; nothing was written)",
			len(data), maxSecret(service, account))
	}
	return line + "\n", nil
}

// commandPrefix is the write command up to the hex data.
func commandPrefix(service, account string) string {
	return `add-generic-password -U -a ` + quote(account) + ` -s ` + quote(service) + ` -X "`
}

// maxSecret is the largest secret (in bytes, once compact and ASCII) a
// single `security -i` line can carry for this service and account.
func maxSecret(service, account string) int {
	return (maxLine - len(commandPrefix(service, account)) - 1) / 2
}

// quote writes v as one double-quoted argument of security's interactive
// parser, which takes a backslash as "the next character literally".
func quote(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(v) + `"`
}

// asciiJSON rewrites every non-ASCII character of a valid JSON text as a \u
// escape (a surrogate pair above U+FFFF). In valid JSON such characters
// occur only inside strings, where the escape means the same character.
func asciiJSON(data []byte) []byte {
	var b bytes.Buffer
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		switch {
		case r < utf8.RuneSelf:
			b.WriteByte(data[0])
		case r > 0xffff:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		data = data[size:]
	}
	return b.Bytes()
}

// firstLine is ": " and the first line of a command's stderr, or "".
// security's messages name the item, never its data.
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if s == "" {
		return ""
	}
	return ": " + s
}

// itoa formats n for messages.
func itoa(n int) string { return fmt.Sprint(n) }
