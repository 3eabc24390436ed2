/**
 * `hub.url` in the gateway configuration (issue 16.4): one address, a list,
 * or a comma string; each address checked on its own with a pointer and a
 * reason, by the gateway when it loads its file and by the hub before it
 * accepts a push (both run contract/gateway-config.ts).
 */
import t from 'tap';
import { checkGatewayConfig, MAX_HUB_URLS, parseHubUrls } from '../../../contract/index.js';
import { parseGatewayConfig } from '../../config.js';

const doc = (url: unknown): Record<string, unknown> => ({ gatewayId: 'gw-1', dataDir: '/tmp/gw-1', hub: { url }, buses: [], devices: [] });

t.test('a list and a comma string are accepted; the parsed config holds one comma string', async (t) => {
  const list = parseGatewayConfig(doc(['mqtt://hub-a.ioc.example:1883', 'mqtt://10.0.0.2:1884', 'mqtt://[fd00::3]']), '<test>');
  t.equal(list.hub.url, 'mqtt://hub-a.ioc.example:1883,mqtt://10.0.0.2:1884,mqtt://[fd00::3]');
  const commas = parseGatewayConfig(doc(' mqtts://a.example:8883 , mqtts://b.example '), '<test>');
  t.equal(commas.hub.url, 'mqtts://a.example:8883,mqtts://b.example', 'trimmed');
  t.equal(parseGatewayConfig(doc('mqtt://127.0.0.1:1883'), '<test>').hub.url, 'mqtt://127.0.0.1:1883', 'one address as before');
  const { addresses } = parseHubUrls('mqtts://a.example, ssl://[fd00::1]:9883, mqtts://10.1.1.1:8884');
  t.same(addresses.map((a) => [a.host, a.port, a.secure]), [['a.example', 8883, true], ['fd00::1', 9883, true], ['10.1.1.1', 8884, true]], 'default ports, IPv6 without brackets');
});

t.test('each bad address is refused with its pointer and reason', async (t) => {
  const cases: Array<[unknown, string, RegExp]> = [
    [['mqtt://a.example', 'http://b.example'], '/hub/url/1', /'http:\/\/b\.example' uses http:\/\/; a hub address is mqtt:\/\/, mqtts:\/\/, tcp:\/\/ or ssl:\/\//],
    ['mqtt://a.example,,mqtt://b.example', '/hub/url', /address 2 is empty/],
    [['mqtt://a.example', 'not a url'], '/hub/url/1', /'not a url' is not a URL; give mqtt:\/\/host:port/],
    [['mqtt://a.example:99999'], '/hub/url/0', /has port 99999; a port is 1-65535/],
    [['mqtt://a.example:0'], '/hub/url/0', /has port 0; a port is 1-65535/],
    [['mqtt://a.example', 'mqtt://a.example:1883'], '/hub/url/1', /is listed twice \(also \/hub\/url\/0\)/],
    ['mqtt://a.example/ioc', '/hub/url', /has a path, query or fragment/],
    [['mqtts://a.example', 'mqtt://b.example'], '/hub/url', /mixes TLS and plain hub addresses \(mqtts, mqtt\); use mqtts:\/\/ for all or mqtt:\/\/ for all/],
    [['mqtt://gw:hunter2@a.example'], '/hub/url/0', /'mqtt:\/\/\*\*\*@a\.example' holds a user name or password inside a URL; put them in hub.username and hub.password/],
    [Array.from({ length: MAX_HUB_URLS + 1 }, (_, i) => `mqtt://h${i}.example`), '/hub/url', /must NOT have more than 16 items/],
    [Array.from({ length: MAX_HUB_URLS + 1 }, (_, i) => `mqtt://h${i}.example`).join(','), '/hub/url', /lists 17 hub addresses; at most 16/],
    [[], '/hub/url', /must NOT have fewer than 1 items/],
    [42, '/hub/url', /must be string,array/],
    [['mqtt://a.example', 7], '/hub/url/1', /must be string/],
  ];
  for (const [url, pointer, message] of cases) {
    const { problems } = checkGatewayConfig(doc(url));
    t.match(problems, [{ pointer, message }], `${JSON.stringify(url).slice(0, 60)}: ${pointer}`);
    t.throws(() => parseGatewayConfig(doc(url), 'gw.json'), { code: 'CONFIG_ERR_INVALID', message: new RegExp(`gw\\.json: ${pointer.replace(/\//g, '\\/')}: `) });
  }
  const { problems } = checkGatewayConfig(doc(['mqtt://gw:hunter2@a.example']));
  t.notOk(JSON.stringify(problems).includes('hunter2'), 'a password in a URL is never repeated');
});
