//go:build !linux

package host

import "os"

// fdPath: only Linux executes a descriptor; elsewhere the plugin runs from
// a private copy.
func fdPath(*os.File) (string, bool) { return "", false }
