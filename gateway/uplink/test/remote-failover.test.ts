/**
 * Remote configuration of a list of hub addresses (issue 16.4): a real hub,
 * simulator and gateway on loopback (test/support/remote-config.ts). A
 * pushed list whose first address is dead is confirmed on the live one; a
 * list of dead addresses is rolled back within the confirm window as a
 * single dead address always was, the report naming them; a bad address is
 * refused by the hub with its pointer, never stored.
 */
import t from 'tap';
import { freePort } from '../../../scripts/sim/free-port.js';
import { hubApi, push, pushable, reportOf, startRemoteStack } from '../../../test/support/remote-config.js';
import { waitFor } from '../../../test/support/wait.js';

const GW = 'gw-test-01';

t.test('a pushed list with a dead first address is applied and confirmed on the live one', async (t) => {
  const { hub, gw, cfg } = await startRemoteStack(t, t.testdir());
  const dead = `mqtt://127.0.0.1:${await freePort()}`;
  const live = `mqtt://127.0.0.1:${hub.mqttPort}`;
  const next = pushable(cfg);
  (next.hub as Record<string, unknown>).url = [dead, live];
  t.equal((await push(hub, GW, { config: next, confirmWindowS: 10 })).status, 201);
  const r = await reportOf(gw, 1, 'applied', 30_000);
  t.equal(r.running.version, 1, 'confirmed');
  t.equal(gw.config.hub.url, `${dead},${live}`, 'the gateway runs the list');
  await waitFor(() => gw.uplink.stats().hub === live, 'connected to the live address');
});

t.test('a pushed list of dead addresses is rolled back, and the report names them', async (t) => {
  const { hub, gw, cfg } = await startRemoteStack(t, t.testdir());
  const dead = [`mqtt://127.0.0.1:${await freePort()}`, `mqtt://127.0.0.1:${await freePort()}`];
  const next = pushable(cfg);
  (next.hub as Record<string, unknown>).url = dead;
  t.equal((await push(hub, GW, { config: next, confirmWindowS: 2 })).status, 201);
  const report = await reportOf(gw, 1, 'rolled-back', 30_000);
  t.equal(report.error?.code, 'CONFIG_ERR_UNCONFIRMED');
  t.match(report.error?.message, dead.join(','), 'names the addresses it could not reach');
  t.match(report.error?.message, /ECONNREFUSED/, 'and why');
  t.equal(gw.config.hub.url, `mqtt://127.0.0.1:${hub.mqttPort}`, 'back on the old hub address');
  await waitFor(() => gw.uplink.connected && gw.uplink.stats().hub === `mqtt://127.0.0.1:${hub.mqttPort}`, 'connected to it again');
});

t.test('a pushed list with a bad address is refused by the hub with its pointer', async (t) => {
  const { hub, cfg } = await startRemoteStack(t, t.testdir());
  const next = pushable(cfg);
  (next.hub as Record<string, unknown>).url = [`mqtt://127.0.0.1:${hub.mqttPort}`, 'htp://typo.example:1883'];
  const r = await push(hub, GW, { config: next });
  t.equal(r.status, 400);
  t.match(r.body.error, { code: 'CONFIG_ERR_INVALID', context: { problems: [{ pointer: '/config/hub/url/1', message: /'htp:\/\/typo\.example:1883' uses htp:\/\/; a hub address is mqtt:\/\// }] } });
  t.same((await hubApi(hub, 'GET', `/api/v1/gateways/${GW}/config/versions`)).body.items, [], 'nothing stored');
});
