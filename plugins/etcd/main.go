// Command etcd is credhost's fleet store: a plugin executable that keeps
// one OAuth login in etcd for every machine sharing it, and refreshes it
// once for the whole fleet. Build it apart from credhost (so the etcd
// client is never linked into every cold `credhost token`) and name it in
// the config by command:
//
//	go build -o /usr/local/bin/credhost-etcd ./plugins/etcd
//
// The credential is the credentials-file document (sdk/credjson) under
// one etcd key. The plugin declares a lock it holds itself, the fleet
// lock: an etcd mutex (concurrency.NewMutex) on a lease of lock_ttl,
// which the host takes through the plugin around re-read, refresh and
// save, so exactly one machine refreshes and the others re-read its
// token. A machine that dies holding it blocks the others for at most
// lock_ttl. Save is a compare-and-swap on the key's ModRevision (and on
// still holding the lock), so a machine that lost its lease never
// overwrites a newer credential. A refresh in flight is recorded beside
// the key (Key + ".refreshing", a hash of the refresh token), so a
// refresh cut short by a machine's death is retried at most once and a
// refresh token the endpoint refused is never presented again.
//
// Config (the provider's config block): endpoints, key, object (default
// claudeAiOauth), lock_key (default key + ".lock"), lock_ttl (default
// 10s), ca_file, cert_file, key_file, username, password_env (the name of
// the variable holding the password, which the provider's env must list;
// a password in the config is refused), dial_timeout (default 2s),
// call_timeout (default 3s). See README, "Sharing one account across
// machines".
//
// It imports only credhost's sdk and etcd's client, as a team's own
// plugin would.
package main

import "github.com/credhost/credhost/sdk/plugin"

func main() { plugin.Serve(newProvider()) }
