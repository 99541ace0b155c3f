#!/usr/bin/env bash
# Re-checks, against a Claude Code release, the facts credhost's defaults
# rely on (docs/claude-code.md quotes them from 2.1.197). Give it the native
# binary of each platform you care about; it prints the client's own code
# around each fact, or MISSING when a pattern is gone (then read the code
# near it and update credhost).
#
#   mkdir -p /tmp/cc && cd /tmp/cc
#   npm pack @anthropic-ai/claude-code-linux-x64@VERSION \
#            @anthropic-ai/claude-code-darwin-arm64@VERSION \
#            @anthropic-ai/claude-code-win32-x64@VERSION
#   for f in *.tgz; do mkdir -p "${f%.tgz}" && tar -xzf "$f" -C "${f%.tgz}"; done
#   bash docs/check-claude-code.sh /tmp/cc/*/package/claude /tmp/cc/*/package/claude.exe
#
# It also takes a strings dump (one line a string). Expect a few minutes per
# binary. Minified names change between builds; the patterns avoid them.
set -euo pipefail
[ $# -gt 0 ] || { sed -n '2,14p' "$0"; exit 2; }

show() { # show FILE TITLE REGEX [CONTEXT]
	local n=${4:-160} hit
	# Find the line first (fast), then cut the context out of it.
	hit=$(grep -m1 -E "$3" "$1" | grep -o -m1 -E ".{0,$n}$3.{0,$n}" | head -1 || true)
	if [ -n "$hit" ]; then printf '  %-28s %s\n' "$2" "$hit"; else printf '  %-28s MISSING\n' "$2"; fi
}

for bin in "$@"; do
	txt=$(mktemp)
	strings -n 8 "$bin" >"$txt"
	echo "== $bin"
	show "$txt" "token endpoint" 'TOKEN_URL:"https://[^"]*/v1/oauth/token"' 40
	show "$txt" "public client id" 'CLIENT_ID:"9d1c250a[^"]*"' 40
	show "$txt" "client id variable" 'let n=process\.env\.CLAUDE_CODE_OAUTH_CLIENT_ID;if\(n\)' 60
	show "$txt" "default scopes" '"user:sessions:claude_code","user:mcp_servers","user:file_upload"' 120
	show "$txt" "scopes it keeps" '"user:design:read","user:design:write"\],[A-Za-z_$]+=\[\.\.\.[A-Za-z_$]+,"user:projects:read","user:projects:write"\]' 40
	show "$txt" "refresh request body" 'grant_type:"refresh_token",refresh_token:' 200
	show "$txt" "scope choice" '&&![a-z]\.clientId\);let [a-z]=[a-z]\?' 200
	show "$txt" "own refresh window" 'let t=300000;return Date\.now\(\)\+t>=e' 60
	show "$txt" "invalid_grant blanks" 'refreshToken:"",accessToken:"",expiresAt:0' 200
	show "$txt" "helper TTL" 'process\.env\.CLAUDE_CODE_API_KEY_HELPER_TTL_MS;if' 200
	ttlvar=$(grep -m1 -o -E 'CLAUDE_CODE_API_KEY_HELPER_TTL_MS;if.{0,300}return [A-Za-z_$0-9]+\}' "$txt" | grep -o -E '[A-Za-z_$0-9]+\}$' | tr -d '}' || true)
	[ -n "$ttlvar" ] && show "$txt" "helper TTL default" "[,;{ ]${ttlvar//$/\\$}=[0-9]+" 0
	show "$txt" "helper reuses stale value" 'return [A-Za-z_$0-9]+\.value;if\(![A-Za-z_$0-9]+\)[A-Za-z_$0-9]+=\{promise:' 120
	show "$txt" "helper as Bearer" '\|\|await [A-Za-z_$]+\([a-z]\);if\([a-z]\)[a-z]\.Authorization=`Bearer' 120
	show "$txt" "file store (0600)" 'name:"plaintext"' 400
	show "$txt" "store with fallback" 'name:`\$\{e\.name\}-with-\$\{t\.name\}-fallback`' 120
	show "$txt" "keychain read" 'find-generic-password","-a",[^,]+,"-w","-s"' 120
	show "$txt" "keychain write" 'add-generic-password -U -a' 300
	show "$txt" "keychain stdin limit" 'if\([a-z]\.length<=[A-Za-z_$]+\)[a-z]=await [A-Za-z_$]+\("security",\["-i"\]' 200
	show "$txt" "keychain service" 'return`Claude Code\$\{' 300
	show "$txt" "keychain account" 'process\.env\.USER\|\|' 200
	show "$txt" "Windows Credential Manager" 'tengu_windows_credman' 300
	show "$txt" "Secret Service (want none)" 'org\.freedesktop\.secrets|secret-tool' 80
	rm -f "$txt"
done
