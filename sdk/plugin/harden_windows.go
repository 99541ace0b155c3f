package plugin

// disableCoreDumps does nothing on Windows: it writes no core files unless
// Windows Error Reporting is set up to keep dumps, which is the user's
// system setting.
func disableCoreDumps() {}
