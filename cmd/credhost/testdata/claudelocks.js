// claudelocks.js takes Claude Code's credential locks with the library
// Claude Code uses (proper-lockfile 4.1.2), with the options Claude Code
// 2.1.197 passes, so credhost's tests can hold them against it:
//
//   refresh lock  <config dir>/.oauth_refresh.lock      {realpath: false, stale: 10000}
//   legacy lock   <realpath(config dir)>.lock           same options, taken second;
//                 ELOCKED on it releases the first and backs off
//   write lock    <config dir>/.storage-write           {realpath: false, stale: 15000,
//                 retries: {retries: 10, minTimeout: 100, maxTimeout: 1000}},
//                 taken inside the refresh locks around the read-modify-write;
//                 no lockfilePath, so its directory is <config dir>/.storage-write.lock
//
// Run with NODE_PATH set to a node_modules holding proper-lockfile:
//
//   node claudelocks.js hold DIR      take the refresh locks, print "locked",
//                                     hold them until stdin closes, release,
//                                     print "released"
//   node claudelocks.js holdwrite DIR as hold, for the write lock alone
//   node claudelocks.js check DIR     print {"refresh":bool,"legacy":bool}:
//                                     is each lock held (proper-lockfile check)
//   node claudelocks.js trylock DIR   try the refresh lock with a few retries:
//                                     print "locked" (then release) or "ELOCKED"
//   node claudelocks.js probe DIR     check, then trylock, in one process:
//                                     print {"refresh":bool,"legacy":bool,"trylock":"…"}
//   node claudelocks.js client DIR TOKEN_URL EXPIRING_ACCESS
//                                     print "ready", wait for stdin to close,
//                                     then one Claude Code-like refresh: lock (with
//                                     retries), re-read the credentials file,
//                                     refresh if it still holds EXPIRING_ACCESS,
//                                     write under the write lock, unlock; print
//                                     "refreshed" or "not_needed"
'use strict';

const fs = require('fs');
const path = require('path');
const lockfile = require('proper-lockfile');

const [mode, dir, tokenURL, expiring] = process.argv.slice(2);

function refreshOptions(d) {
  return {
    lockfilePath: path.join(d, '.oauth_refresh.lock'),
    realpath: false,
    stale: 10000,
    onCompromised: (e) => { console.error('refresh lock compromised: ' + e.message); },
  };
}

function legacyPath(d) {
  let real = d;
  try { real = fs.realpathSync(d); } catch (e) { /* as Claude Code: the path itself */ }
  return real + '.lock';
}

// takeRefreshLocks is Claude Code's: the refresh lock, then the legacy one;
// ELOCKED on the legacy lock releases the first and rethrows.
async function takeRefreshLocks(d) {
  const release = await lockfile.lock(d, refreshOptions(d));
  const legacy = legacyPath(d);
  let releaseLegacy = null;
  try {
    releaseLegacy = await lockfile.lock(legacy, { ...refreshOptions(d), lockfilePath: legacy });
  } catch (e) {
    if (e.code === 'ELOCKED') {
      await release();
      throw e;
    }
    console.error('legacy lock: ' + e.message);
  }
  return async () => {
    if (releaseLegacy) await releaseLegacy();
    await release();
  };
}

function takeWriteLock(d) {
  return lockfile.lock(path.join(d, '.storage-write'), {
    realpath: false,
    retries: { retries: 10, minTimeout: 100, maxTimeout: 1000 },
    stale: 15000,
    onCompromised: (e) => { console.error('write lock compromised: ' + e.message); },
  });
}

async function withWriteLock(d, fn) {
  const release = await takeWriteLock(d);
  try {
    return await fn();
  } finally {
    await release();
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function client(d) {
  let release;
  for (let attempt = 0; !release; attempt++) {
    try {
      release = await takeRefreshLocks(d);
    } catch (e) {
      if (e.code !== 'ELOCKED' || attempt > 400) throw e;
      await sleep(25 + Math.random() * 50);
    }
  }
  try {
    const file = path.join(d, '.credentials.json');
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    const o = doc.claudeAiOauth;
    if (o.accessToken !== expiring) return 'not_needed';
    const resp = await fetch(tokenURL, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: o.refreshToken, client_id: 'node-client' }),
    });
    const body = await resp.json();
    if (!resp.ok) throw new Error('refresh: HTTP ' + resp.status + ' ' + body.error);
    await withWriteLock(d, async () => {
      const now = JSON.parse(fs.readFileSync(file, 'utf8'));
      now.claudeAiOauth = {
        ...now.claudeAiOauth,
        accessToken: body.access_token,
        refreshToken: body.refresh_token || o.refreshToken,
        expiresAt: Date.now() + (body.expires_in || 28800) * 1000,
      };
      const tmp = file + '.node-tmp';
      fs.writeFileSync(tmp, JSON.stringify(now), { mode: 0o600 });
      fs.renameSync(tmp, file);
    });
    return 'refreshed';
  } finally {
    await release();
  }
}

async function trylock(d) {
  try {
    const release = await lockfile.lock(d, { ...refreshOptions(d), retries: { retries: 3, minTimeout: 100, maxTimeout: 200 } });
    await release();
    return 'locked';
  } catch (e) {
    if (e.code !== 'ELOCKED') throw e;
    return 'ELOCKED';
  }
}

async function main() {
  switch (mode) {
    case 'hold':
    case 'holdwrite': {
      const release = await (mode === 'hold' ? takeRefreshLocks(dir) : takeWriteLock(dir));
      console.log('locked');
      process.stdin.resume();
      await new Promise((r) => process.stdin.on('end', r));
      await release();
      console.log('released');
      return;
    }
    case 'check': {
      const refresh = await lockfile.check(dir, refreshOptions(dir));
      const legacy = await lockfile.check(legacyPath(dir), { ...refreshOptions(dir), lockfilePath: legacyPath(dir) });
      console.log(JSON.stringify({ refresh, legacy }));
      return;
    }
    case 'trylock':
      console.log(await trylock(dir));
      return;
    case 'probe': {
      const refresh = await lockfile.check(dir, refreshOptions(dir));
      const legacy = await lockfile.check(legacyPath(dir), { ...refreshOptions(dir), lockfilePath: legacyPath(dir) });
      console.log(JSON.stringify({ refresh, legacy, trylock: await trylock(dir) }));
      return;
    }
    case 'client':
      // Started and loaded: say so, and begin when stdin closes, so a
      // test can start Node and credhost processes at the same moment.
      console.log('ready');
      process.stdin.resume();
      await new Promise((r) => process.stdin.on('end', r));
      console.log(await client(dir));
      return;
  }
  throw new Error('unknown mode ' + mode);
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
