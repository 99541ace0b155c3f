//go:build windows

package file

// syncDir is a no-op on Windows: directories cannot be opened for fsync
// there, and MoveFileEx (os.Rename) is already durable for the entry.
func syncDir(string) error { return nil }
