package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportArrows keeps the dependency arrows one way: sdk/ imports no
// other credhost package; host/ never imports plugins/ or cmd/; plugins/ and
// examples/ import only sdk/ (test files included; a package's external
// test may import the package itself).
func TestImportArrows(t *testing.T) {
	t.Parallel()
	const module = "github.com/credhost/credhost/"
	allowed := map[string][]string{
		"sdk":      {"sdk"},
		"host":     {"sdk", "host"},
		"plugins":  {"sdk"},
		"examples": {"sdk"},
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
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
