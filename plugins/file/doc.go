// Package file is the credhost provider for a JSON credentials file, by
// default Claude Code's ~/.claude/.credentials.json
// ($CLAUDE_CONFIG_DIR/.credentials.json when that is set):
//
//	{"claudeAiOauth": {"accessToken": "...", "refreshToken": "...",
//	  "expiresAt": 1767225600000, "scopes": [...], "subscriptionType": "max"},
//	 "mcpOAuth": {...}}
//
// Read parses the object under the configured key (default claudeAiOauth).
// expiresAt may be whole epoch milliseconds or seconds (above 1e12 is
// milliseconds), as a number or a digit string, or an RFC 3339 string;
// null, absent and 0 mean unknown. It is read at millisecond precision, the
// precision Save writes (integer milliseconds), so a save and a re-read give
// the same expiry. Other string fields of the object come back as
// Credential.Metadata; fields of other types are not exposed but survive a
// Save. A missing file, key or access token is sdk.ErrNotFound; anything
// malformed (bad or truncated JSON, trailing data, wrong types, a fractional
// or negative expiry, a file over 1 MiB, a directory or named pipe) is a
// fault whose message names the path and the field and never quotes a
// string from the file. Read never modifies the file.
//
// Save is read-modify-write: it keeps every key it does not own, at the top
// level and inside the object, and refuses to overwrite a file it cannot
// parse. It writes atomically (a temporary file in the same directory,
// fsync, rename, fsync of the directory), mode 0600 whatever the umask (a
// narrower existing mode is kept), with the replaced file's owner and group
// (root refreshing a user's file leaves it the user's), creates a missing
// parent directory 0700, and writes through a symlink to its target, so the
// link stays a link.
//
// Read and Save use the same file: the path resolved as the kernel resolves
// it (every symlink followed, a relative target taken from the resolved
// directory of its link, ".." applied after resolving), so a save never
// creates a file a read would not read. The file is opened before it is
// checked (non-blocking, not following a symlink put in its place) and
// whatever is not a regular file is refused by its open descriptor, so a
// named pipe swapped in cannot block a call.
//
// Refresh runs the OAuth refresh_token grant (sdk/oauth) with the host's
// oauth settings; it is available when a token_url is configured.
//
// Config:
//
//	path: FILE           default as above; a leading ~ is the home directory
//	key: NAME            default claudeAiOauth
//	token_prefix: STR    opt-in format check, e.g. "sk-ant-oat01-"
//
// A Provider is safe for concurrent use; Saves in one process are
// serialised. Across processes the host holds the locks Info declares, in
// this order:
//
//	FILE.lock                       flock (credhost's own), over re-read,
//	                                refresh and save; FILE is the path
//	                                resolved through links
//
// and, when FILE is named .credentials.json (Claude Code's file, in its
// config directory DIR, the directory the path names), Claude Code's own
// locks, taken as Claude Code 2.1.197 takes them with proper-lockfile
// (mkdir, mtime refreshed while held, stale after the time given):
//
//	DIR/.oauth_refresh.lock         stale 10s, over re-read, refresh, save
//	realpath(DIR).lock              stale 10s (the legacy lock, e.g.
//	                                ~/.claude.lock), taken second, as
//	                                Claude Code does
//	DIR/.storage-write.lock         stale 15s, around the save only, inside
//	                                the two above, as Claude Code's writes
//	                                (it locks DIR/.storage-write, and
//	                                proper-lockfile adds ".lock")
//
// so credhost and any number of Claude Code processes refresh one at a
// time, and whoever comes second re-reads the file and finds the new token.
package file
