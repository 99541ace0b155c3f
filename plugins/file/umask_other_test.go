//go:build !unix

package file_test

func setUmask(int) int { return 0 }
