package secretstore

import "io/fs"

// privateModes: Windows has no Unix modes; os.TempDir() is in the user's
// own profile, private by its ACL.
const privateModes = false

func ownedByMe(fs.FileInfo) bool { return true }

func userDirName() string { return "credhost-locks" }
