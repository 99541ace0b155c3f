package host

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// DefaultSource is Config.Source for the embedded default.
const DefaultSource = "embedded default"

// maxConfigSize caps a config file: real ones are a few KiB.
const maxConfigSize = 1 << 20

// DefaultConfigYAML returns the embedded default configuration (Claude
// Code's chain), as shipped.
func DefaultConfigYAML() []byte { return bytes.Clone(defaultConfig) }

// LoadOptions says where LoadConfig looks and how it reaches the system.
type LoadOptions struct {
	// Path is the --config flag; empty when not given.
	Path string
	// LookupEnv defaults to os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// ReadFile defaults to a size-capped os.ReadFile.
	ReadFile func(string) ([]byte, error)
	// UserHomeDir defaults to os.UserHomeDir.
	UserHomeDir func() (string, error)
}

// LoadConfig finds and parses the configuration: opts.Path, else
// $CREDHOST_CONFIG, else $XDG_CONFIG_HOME/credhost/config.yaml (or
// ~/.config/credhost/config.yaml) when that file exists, else the embedded
// default. Every error wraps ErrConfig.
func LoadConfig(opts LoadOptions) (*Config, error) {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if opts.ReadFile == nil {
		opts.ReadFile = readCapped
	}
	if opts.UserHomeDir == nil {
		opts.UserHomeDir = os.UserHomeDir
	}
	explicit := func(path, from string) (*Config, error) {
		data, err := opts.ReadFile(path)
		if err != nil {
			return nil, &ConfigError{Source: path, Msg: fmt.Sprintf("cannot read the config file named by %s: %v", from, unwrapPath(err))}
		}
		return ParseConfig(data, path, opts.LookupEnv)
	}
	if opts.Path != "" {
		return explicit(opts.Path, "--config")
	}
	if p, ok := opts.LookupEnv("CREDHOST_CONFIG"); ok && p != "" {
		return explicit(p, "$CREDHOST_CONFIG")
	}
	var xdg string
	if dir, ok := opts.LookupEnv("XDG_CONFIG_HOME"); ok && dir != "" {
		xdg = filepath.Join(dir, "credhost", "config.yaml")
	} else if home, err := opts.UserHomeDir(); err == nil && home != "" {
		xdg = filepath.Join(home, ".config", "credhost", "config.yaml")
	}
	if xdg != "" {
		data, err := opts.ReadFile(xdg)
		switch {
		case err == nil:
			return ParseConfig(data, xdg, opts.LookupEnv)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, &ConfigError{Source: xdg, Msg: fmt.Sprintf("cannot read the config file: %v", unwrapPath(err))}
		}
	}
	return ParseConfig(defaultConfig, DefaultSource, opts.LookupEnv)
}

// readCapped reads a file of at most maxConfigSize bytes.
func readCapped(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("larger than %d bytes; is this a config file?", maxConfigSize)
	}
	return data, nil
}

// unwrapPath drops the *PathError's repetition of the path.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
