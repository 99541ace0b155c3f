package host

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// modulesEnv names the variable that gives an interpreted plugin the
// directory of modules its entry pins (modules:): the interpreter gets its
// script as /dev/fd/N, so the script's own directory is no guide.
const modulesEnv = "CREDHOST_PLUGIN_MODULES"

// openScript opens the script an interpreter runs (a provider's script:),
// verified against want (hex SHA-256; "" pins nothing) on the very file it
// hands the interpreter: an interpreter opens its script by path, so it is
// given the verified open file, /dev/fd/N, never the configured path, which
// could name other bytes by the time it is opened. Where descriptors
// cannot be opened by path, it gets a private copy, hashed as written.
func openScript(path, want string) (*executable, error) {
	return openVerified(path, want, func(f *os.File) (string, bool) {
		_, ok := runFromDescriptor(f)
		return "", ok
	})
}

// addScript makes cmd run the verified script: the script's file is passed
// as the next extra descriptor (after the pinned interpreter's, if exe has
// one), and its /dev/fd path, or the private copy's path, ends the
// arguments.
func addScript(cmd *exec.Cmd, exe, script *executable) {
	if script.file == nil {
		cmd.Args = append(cmd.Args, script.path)
		return
	}
	n := len(cmd.ExtraFiles)
	if exe != nil && exe.file != nil {
		n++ // prepare puts the interpreter's descriptor first
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, script.file)
	cmd.Args = append(cmd.Args, "/dev/fd/"+strconv.Itoa(3+n))
}

// verifyModules checks a directory of modules against its pinned tree hash
// (treeHash), and that only its owner (you or root) may change it or
// anything in it: the interpreter later reads the modules by path, so the
// pin holds only while nobody else can swap them.
func verifyModules(dir, want string) error {
	got, err := treeHash(dir, checkModuleEntry)
	if err != nil {
		return err
	}
	if got != want {
		return &pinMismatchError{path: dir, got: got, want: want, what: "modules"}
	}
	return nil
}

// treeHash is the SHA-256 of a directory tree, computed as
//
//	cd DIR && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum
//
// does: a line "<sha256 of the file>  ./<path>" for each regular file,
// sorted by path bytewise, hashed together. Empty directories do not count.
// A symbolic link, a special file, or a name with a newline or backslash
// (which sha256sum escapes) is refused; check is called on the directory's
// parent, the directory and everything in it.
func treeHash(dir string, check func(path, what string, fi fs.FileInfo) error) (string, error) {
	fail := func(err error) (string, error) { return "", fmt.Errorf("modules %s: %w", dir, err) }
	if pi, err := os.Stat(filepath.Dir(dir)); err != nil {
		return fail(unwrapPath(err))
	} else if err := check(filepath.Dir(dir), "the directory holding modules "+dir+",", pi); err != nil {
		return fail(err)
	}
	type entry struct{ name, sum string }
	var files []entry
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		name := "./" + filepath.ToSlash(rel)
		if rel == "." {
			name = "."
		}
		if strings.ContainsAny(name, "\n\\") {
			return fmt.Errorf("%q: a name with a newline or backslash cannot be pinned", rel)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if !d.IsDir() && !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file or directory (mode %s); a pinned module directory holds only those", name, fi.Mode())
		}
		if err := check(path, "the module", fi); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		sum, err := hashFile(path)
		if err != nil {
			return err
		}
		files = append(files, entry{name, sum})
		return nil
	})
	if err != nil {
		return fail(unwrapPath(err))
	}
	slices.SortFunc(files, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	all := sha256.New()
	for _, f := range files {
		fmt.Fprintf(all, "%s  %s\n", f.sum, f.name)
	}
	return hex.EncodeToString(all.Sum(nil)), nil
}

// hashFile is the hex SHA-256 of the regular file at path.
func hashFile(path string) (string, error) {
	f, err := openNoBlock(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}
