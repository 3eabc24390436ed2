/**
 * Stored secret hashes move to the current scheme at login (secret-hash.ts,
 * identity-service.ts): a hub that stored scrypt hashes, restarted with the
 * fast default, upgrades each account's hash at its first good login, so the
 * next restart's logins cost no scrypt at all; a wrong secret is refused
 * before and after. Each start is a fresh process's view (no verified cache).
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { silentLogger } from '../../lib/index.js';
import { startHub, type Hub, type HubOptions } from '../index.js';
import { connectOk, mqttUrl, tempDir, TEST_SCRYPT, tryConnect } from './support.js';

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await sleep(10);
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

t.test('a login upgrades an scrypt hash to the fast scheme; the next start verifies it without scrypt', async (t) => {
  const dataDir = path.join(tempDir(t), 'hub');
  const start = async (auth: HubOptions['auth']): Promise<Hub> => startHub({ dataDir, logger: silentLogger(), mqttPort: 0, httpPort: 0, auth });

  const old = await start({ mode: 'required', scrypt: TEST_SCRYPT });
  const gw = await old.identity.issueGatewayCredential('gw-old', { site: 's' });
  const ioc = await old.identity.createAccount({ username: 'ioc', kind: 'consumer' }, { actor: 'test' });
  await old.stop();

  const upgrading = await start({ mode: 'required' });
  try {
    const wrong = await tryConnect(t, mqttUrl(upgrading), { clientId: 'gw-old', username: 'gw-old', password: `${gw.password}x` });
    t.match(wrong, { ok: false, code: 4 }, 'a wrong secret is refused against the scrypt hash');
    t.equal(upgrading.identity.counters.hashUpgrades, 0, 'a failed login upgrades nothing');
    const c = await connectOk(t, mqttUrl(upgrading), { clientId: 'gw-old', username: 'gw-old', password: gw.password });
    await until('the hash upgrade', () => upgrading.identity.counters.hashUpgrades === 1);
    t.equal(upgrading.identity.counters.scryptChecks, 2, 'both logins were checked against the scrypt hash');
    await c.endAsync();
    const again = await connectOk(t, mqttUrl(upgrading), { clientId: 'gw-old', username: 'gw-old', password: gw.password });
    t.equal(upgrading.identity.counters.hashChecks, 2, 'a reconnect to the same process is a cache hit after the upgrade too');
    await again.endAsync();
  } finally {
    await upgrading.stop();
  }

  const fresh = await start({ mode: 'required' });
  try {
    const c = await connectOk(t, mqttUrl(fresh), { clientId: 'gw-old', username: 'gw-old', password: gw.password });
    t.same({ hashed: fresh.identity.counters.hashChecks, scrypt: fresh.identity.counters.scryptChecks, upgrades: fresh.identity.counters.hashUpgrades }, { hashed: 1, scrypt: 0, upgrades: 0 }, 'the upgraded hash verifies without scrypt');
    const wrong = await tryConnect(t, mqttUrl(fresh), { clientId: 'gw-old', username: 'gw-old', password: gw.password.slice(0, -1) });
    t.match(wrong, { ok: false, code: 4 }, 'a wrong secret is refused against the upgraded hash');
    await c.endAsync();
    // The consumer never logged in: still scrypt, upgraded at its first login here.
    const consumer = await connectOk(t, mqttUrl(fresh), { clientId: 'ioc', username: 'ioc', password: ioc.password });
    await until('the consumer hash upgrade', () => fresh.identity.counters.hashUpgrades === 1);
    t.equal(fresh.identity.counters.scryptChecks, 1);
    await consumer.endAsync();
    // A revoked account is refused and not upgraded; a re-issued credential replaces the secret.
    await fresh.identity.revokeGateway('gw-old', { actor: 'test' });
    t.match(await tryConnect(t, mqttUrl(fresh), { clientId: 'gw-old', username: 'gw-old', password: gw.password }), { ok: false, code: 5 });
    t.equal(fresh.identity.counters.hashUpgrades, 1);
  } finally {
    await fresh.stop();
  }

  // A deployment that chooses scrypt again moves fast hashes back to it, the same way.
  const strict = await start({ mode: 'required', scrypt: TEST_SCRYPT });
  try {
    const c = await connectOk(t, mqttUrl(strict), { clientId: 'ioc', username: 'ioc', password: ioc.password });
    await until('the scrypt re-hash', () => strict.identity.counters.hashUpgrades === 1);
    t.equal(strict.identity.counters.scryptChecks, 0, 'the stored fast hash was checked without scrypt');
    await c.endAsync();
  } finally {
    await strict.stop();
  }
});
