// Command fakesecurity is a FAKE of macOS's /usr/bin/security, for tests on
// systems without a Keychain. It keeps generic-password items in a JSON file
// ($FAKE_SECURITY_STORE) and behaves as Apple's tool does for what credhost
// and Claude Code use (SecurityTool/macOS in apple-oss-distributions/
// Security: security.c, keychain_add.c, keychain_find.c, readline.c):
//
//   - find-generic-password [-a ACCOUNT] [-s SERVICE] [-w]: exit 44 (item not
//     found) when absent; with -w it prints the data and a newline, or, when
//     any byte is not printable ASCII, every byte as lowercase hex;
//   - add-generic-password -a A -s S (-w DATA | -X HEX) [-U]: exit 45
//     (duplicate item) when it exists and -U is not given;
//   - delete-generic-password -a A -s S;
//   - -i: reads commands from stdin, one a line, split as security's
//     interactive parser does (quotes, backslash escapes), and exits with the
//     last command's status, printing "NAME: returned N" for a failure. A
//     line longer than 4095 bytes is refused with exit 1: the real tool
//     would run it cut in two, which this fake makes loud.
//
// Every invocation appends its argv, one JSON array a line, to
// $FAKE_SECURITY_ARGV, so tests can check that no secret was an argument.
// $FAKE_SECURITY_LOCKED=1 makes reads fail as a locked keychain does (exit
// 36, interaction not allowed).
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

const maxLine = 4095

type item struct{ Service, Account, Data string }

func main() {
	record(os.Args)
	args := os.Args[1:]
	if len(args) == 1 && args[0] == "-i" {
		os.Exit(interactive())
	}
	os.Exit(run(args))
}

func record(argv []string) {
	path := os.Getenv("FAKE_SECURITY_ARGV")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakesecurity:", err)
		os.Exit(99)
	}
	defer f.Close()
	b, _ := json.Marshal(argv)
	f.Write(append(b, '\n'))
}

func interactive() int {
	in := bufio.NewReader(os.Stdin)
	result := 0
	for {
		line, err := in.ReadString('\n')
		if line == "" && err != nil {
			return result
		}
		line = strings.TrimSuffix(line, "\n")
		if len(line) > maxLine {
			fmt.Fprintf(os.Stderr, "fakesecurity: a %d-byte line; security -i reads at most %d and would split it\n", len(line), maxLine)
			return 1
		}
		args := splitLine(line)
		if len(args) == 0 {
			continue
		}
		result = run(args)
		if result != 0 {
			fmt.Fprintf(os.Stderr, "%s: returned %d\n", args[0], result)
		}
	}
}

// splitLine is security.c's split_line: whitespace separates arguments;
// '...' or "..." quote; a backslash takes the next character literally.
func splitLine(line string) []string {
	var args []string
	var cur strings.Builder
	in, quote, escaped := false, byte(0), false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case escaped:
			cur.WriteByte(c)
			escaped = false
		case c == '\\' && in:
			escaped = true
		case quote != 0:
			if c == quote {
				args, in, quote = append(args, cur.String()), false, 0
				cur.Reset()
			} else {
				cur.WriteByte(c)
			}
		case c == ' ' || c == '\t':
			if in {
				args, in = append(args, cur.String()), false
				cur.Reset()
			}
		case !in && (c == '"' || c == '\''):
			in, quote = true, c
		case c == '\\':
			in, escaped = true, true
		default:
			in = true
			cur.WriteByte(c)
		}
	}
	if in {
		args = append(args, cur.String())
	}
	return args
}

func run(args []string) int {
	opts, flags := map[byte]string{}, map[byte]bool{}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if len(a) != 2 || a[0] != '-' {
			fmt.Fprintf(os.Stderr, "fakesecurity: unexpected argument %q\n", a)
			return 2
		}
		switch a[1] {
		case 'w':
			if args[0] == "find-generic-password" {
				flags['w'] = true
				continue
			}
			fallthrough
		case 'a', 's', 'X':
			if i+1 >= len(args) {
				return 2
			}
			i++
			opts[a[1]] = args[i]
		case 'U':
			flags['U'] = true
		default:
			fmt.Fprintf(os.Stderr, "fakesecurity: unsupported option %s\n", a)
			return 2
		}
	}
	items := load()
	find := func() int {
		for i, it := range items {
			if (opts['a'] == "" || it.Account == opts['a']) && (opts['s'] == "" || it.Service == opts['s']) {
				return i
			}
		}
		return -1
	}
	switch args[0] {
	case "find-generic-password":
		if os.Getenv("FAKE_SECURITY_LOCKED") == "1" {
			fmt.Fprintln(os.Stderr, "security: SecKeychainSearchCopyNext: User interaction is not allowed.")
			return 36
		}
		i := find()
		if i < 0 {
			fmt.Fprintln(os.Stderr, "security: SecKeychainSearchCopyNext: The specified item could not be found in the keychain.")
			return 44
		}
		if flags['w'] {
			data := []byte(items[i].Data)
			plain := true
			for _, c := range data {
				plain = plain && c >= 0x20 && c <= 0x7e
			}
			if plain {
				fmt.Printf("%s\n", data)
			} else {
				fmt.Printf("%s\n", hex.EncodeToString(data))
			}
		}
		return 0
	case "add-generic-password":
		if opts['a'] == "" || opts['s'] == "" {
			return 2
		}
		data := opts['w']
		if x, ok := opts['X']; ok {
			raw, err := hex.DecodeString(x)
			if err != nil {
				fmt.Fprintln(os.Stderr, "security: Unable to convert password data (-X must specify valid hex digits)")
				return 2
			}
			data = string(raw)
		}
		if i := find(); i >= 0 {
			if !flags['U'] {
				fmt.Fprintln(os.Stderr, "security: SecKeychainItemCreateFromContent (<default>): The specified item already exists in the keychain.")
				return 45
			}
			items[i].Data = data
		} else {
			items = append(items, item{opts['s'], opts['a'], data})
		}
		save(items)
		return 0
	case "delete-generic-password":
		i := find()
		if i < 0 {
			return 44
		}
		save(append(items[:i], items[i+1:]...))
		return 0
	}
	fmt.Fprintf(os.Stderr, "security: unknown command %q\n", args[0])
	return 1
}

func load() []item {
	var items []item
	data, err := os.ReadFile(os.Getenv("FAKE_SECURITY_STORE"))
	if err == nil {
		json.Unmarshal(data, &items)
	}
	return items
}

func save(items []item) {
	data, _ := json.Marshal(items)
	if err := os.WriteFile(os.Getenv("FAKE_SECURITY_STORE"), data, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "fakesecurity:", err)
		os.Exit(99)
	}
}
