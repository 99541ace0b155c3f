package host

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// DefaultSource is Config.Source for the embedded default.
const DefaultSource = "embedded default"

// maxConfigSize caps a config file: real ones are a few KiB.
const maxConfigSize = 1 << 20

// DefaultConfigYAML returns the embedded default configuration (Claude
// Code's chain), as shipped.
func DefaultConfigYAML() []byte { return bytes.Clone(defaultConfig) }

// Where LoadConfig found the config: Config.Origin.
const (
	OriginFlag    = "--config"
	OriginEnv     = "$CREDHOST_CONFIG"
	OriginUser    = "user config"
	OriginSystem  = "system config"
	OriginDefault = "embedded default"
)

// LoadOptions says where LoadConfig looks and how it reaches the system.
type LoadOptions struct {
	// Path is the --config flag; empty when not given.
	Path string
	// SystemPath replaces SystemConfigPath() (tests); the trust checks on
	// the system config apply wherever it is. Nothing a user sets at run
	// time (flag or environment) moves the system config.
	SystemPath string
	// LookupEnv defaults to os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// ReadFile defaults to a size-capped os.ReadFile.
	ReadFile func(string) ([]byte, error)
	// UserHomeDir defaults to os.UserHomeDir.
	UserHomeDir func() (string, error)
}

// LoadConfig finds and parses the configuration: opts.Path, else
// $CREDHOST_CONFIG, else $XDG_CONFIG_HOME/credhost/config.yaml (or
// ~/.config/credhost/config.yaml) when that file exists, else the system
// config (SystemConfigPath) when that exists, else the embedded default.
// Config.Origin says which. Every error wraps ErrConfig.
//
// The system config is what an administrator deploys for every user of the
// machine, so it must be as trustworthy as the machine: a regular file that
// only its owner may write, owned by root (or by this user), in a directory
// held to the same rule. Whoever can write it chooses the plugins every
// user's credentials pass through, so one that another user could change is
// refused (an error, not a silent fall to the default).
func LoadConfig(opts LoadOptions) (*Config, error) {
	cfg, origin, err := loadConfig(opts)
	if cfg != nil {
		cfg.Origin = origin
	}
	return cfg, err
}

func loadConfig(opts LoadOptions) (*Config, string, error) {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if opts.ReadFile == nil {
		opts.ReadFile = readCapped
	}
	if opts.UserHomeDir == nil {
		opts.UserHomeDir = os.UserHomeDir
	}
	explicit := func(path, from string) (*Config, string, error) {
		data, err := opts.ReadFile(path)
		if err != nil {
			return nil, from, &ConfigError{Source: path, Msg: fmt.Sprintf("cannot read the config file named by %s: %v", from, unwrapPath(err))}
		}
		cfg, err := ParseConfig(data, path, opts.LookupEnv)
		return cfg, from, err
	}
	if opts.Path != "" {
		return explicit(opts.Path, OriginFlag)
	}
	if p, ok := opts.LookupEnv("CREDHOST_CONFIG"); ok && p != "" {
		return explicit(p, OriginEnv)
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
			cfg, err := ParseConfig(data, xdg, opts.LookupEnv)
			return cfg, OriginUser, err
		case !errors.Is(err, fs.ErrNotExist):
			return nil, OriginUser, &ConfigError{Source: xdg, Msg: fmt.Sprintf("cannot read the config file: %v", unwrapPath(err))}
		}
	}
	sys := opts.SystemPath
	if sys == "" {
		sys = SystemConfigPath()
	}
	if sys != "" {
		data, err := readSystemConfig(sys)
		switch {
		case err == nil:
			cfg, err := ParseConfig(data, sys, opts.LookupEnv)
			return cfg, OriginSystem, err
		case !errors.Is(err, fs.ErrNotExist):
			return nil, OriginSystem, &ConfigError{Source: sys, Msg: "the system config: " + err.Error()}
		}
	}
	cfg, err := parseDefault(opts.LookupEnv, runtime.GOOS)
	return cfg, OriginDefault, err
}

// readSystemConfig reads the system config at path after checking, on the
// file as opened, that no one but root (or this user) may change it: a
// regular file, writable by its owner only, in a directory writable by its
// owner only, both owned by root or this user. An absent file is
// fs.ErrNotExist.
func readSystemConfig(path string) ([]byte, error) {
	f, err := openNoBlock(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("cannot read it: %w", unwrapPath(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read it: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if err := checkSystemOwner(path, f, fi); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read it: %w", err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("larger than %d bytes; is this a config file?", maxConfigSize)
	}
	return data, nil
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
