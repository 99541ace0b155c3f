package host

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/windows"
)

// SystemConfigPath is where an administrator deploys a config for every
// user of the machine: %ProgramData%\credhost\config.yaml, the ProgramData
// folder as the system knows it (not as the environment says). LoadConfig
// reads it when no user config exists. Empty if the folder is unknown.
func SystemConfigPath() string {
	dir, err := windows.KnownFolderPath(windows.FOLDERID_ProgramData, 0)
	if err != nil || dir == "" {
		return ""
	}
	return filepath.Join(dir, "credhost", "config.yaml")
}

// checkSystemOwner refuses a system config whose file or directory is owned
// by anyone but Administrators, SYSTEM or this user. Users may create
// folders under ProgramData, so a config a user planted there before the
// administrator would otherwise hold every other user's chain. (The
// owner is checked, not every entry of the access list.)
func checkSystemOwner(path string, f *os.File, _ fs.FileInfo) error {
	sd, err := windows.GetSecurityInfo(windows.Handle(f.Fd()), windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("cannot read its owner: %w", err)
	}
	if err := systemOwner(path, "", sd); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	sd, err = windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("cannot read the owner of its directory: %w", err)
	}
	return systemOwner(dir, "its directory ", sd)
}

func systemOwner(path, what string, sd *windows.SECURITY_DESCRIPTOR) error {
	owner, _, err := sd.Owner()
	if err != nil {
		return fmt.Errorf("cannot read the owner of %s%s: %w", what, path, err)
	}
	if owner.IsWellKnown(windows.WinBuiltinAdministratorsSid) || owner.IsWellKnown(windows.WinLocalSystemSid) {
		return nil
	}
	if u, err := windows.GetCurrentProcessToken().GetTokenUser(); err == nil && owner.Equals(u.User.Sid) {
		return nil
	}
	return fmt.Errorf("%s%s is owned by %s, not Administrators or SYSTEM: whoever owns the system config chooses the plugins every user's credentials pass through", what, path, owner.String())
}
