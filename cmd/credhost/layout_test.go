package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportArrows keeps the dependency arrows one way: sdk/ imports no
// other credhost package; host/ never imports plugins/ or cmd/; plugins/ and
// examples/ import only sdk/, but for the one embedding example,
// examples/launcher, which imports host/ too (test files included; a package's external
// test may import the package itself). Within sdk/, the contract (package
// sdk itself) imports no credhost package at all: its wiring (sdk/plugin)
// and helpers (sdk/oauth, ...) import it, never the other way. host/ and
// plugins/ may use the wiring and helpers under sdk/ as much as the contract.
func TestImportArrows(t *testing.T) {
	t.Parallel()
	const module = "github.com/credhost/credhost/"
	allowed := map[string][]string{
		"sdk":      {"sdk"},
		"host":     {"sdk", "host"},
		"plugins":  {"sdk"},
		"examples": {"sdk"},
	}
	// examples/launcher shows a Go launcher embedding credhost: it talks to
	// `credhost serve` through host/daemon's client and its Transport, so
	// it imports host/ (and only it) besides sdk/. Every other example is a
	// plugin, and imports sdk/ alone.
	embedding := map[string][]string{
		"examples/launcher": {"sdk", "host"},
	}
	root := filepath.Join("..", "..")
	for top, ok := range allowed {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, filepath.Dir(path))
			self := module + filepath.ToSlash(rel) // an external test package imports its own
			ok := ok
			if e, found := embedding[filepath.ToSlash(rel)]; found {
				ok = e
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if !strings.HasPrefix(p, module) || p == self {
					continue
				}
				first, _, _ := strings.Cut(strings.TrimPrefix(p, module), "/")
				permitted := false
				for _, a := range ok {
					permitted = permitted || first == a
				}
				if !permitted {
					rel, _ := filepath.Rel(root, path)
					t.Errorf("%s imports %s: %s/ may import only %v", rel, p, top, ok)
				}
				if rel == "sdk" {
					rel, _ := filepath.Rel(root, path)
					t.Errorf("%s imports %s: the contract, package sdk, imports no credhost package (its wiring and helpers import it)", rel, p)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestContractImportsOnlyTheStandardLibrary keeps the go-plugin wiring out
// of the contract, so a plugin author's `go doc` of package sdk shows the
// contract and nothing else: package sdk (its non-test files) imports the
// standard library only; go-plugin, gRPC, protobuf and hclog are
// sdk/plugin's.
func TestContractImportsOnlyTheStandardLibrary(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "..", "sdk")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		files++
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, name), nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") {
				t.Errorf("sdk/%s imports %s: the contract imports only the standard library (plugin wiring belongs in sdk/plugin)", name, p)
			}
		}
	}
	if files == 0 {
		t.Fatalf("no Go files in %s", dir)
	}
}

// TestCredhostDoesNotLinkEtcd keeps the fleet store's client out of the
// credhost binary: plugins/etcd is its own executable, because linking
// etcd's client (gRPC balancers, zap, its generated protocol) into
// credhost would slow the start of every cold `credhost token`, fleet or
// not. Nothing under cmd/credhost may depend on go.etcd.io.
func TestCredhostDoesNotLinkEtcd(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "go.etcd.io/") {
			t.Errorf("credhost links %s: the etcd client belongs to the plugins/etcd executable only", dep)
		}
	}
}
