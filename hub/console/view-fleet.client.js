// Fleet overview: every gateway with its connection state, site, backlog,
// last seen time, devices and active alarms; updated live.
import { get, stream } from './api.client.js';
import { ago, badge, count, duration, fill, h, throttle } from './dom.client.js';

export function render(root, _params, ctx) {
  const state = { gateways: new Map(), alarms: new Map(), filter: '', offlineOnly: false, loaded: false };
  const tiles = h('div', { class: 'tiles' });
  const search = h('input', { type: 'search', placeholder: 'Filter by gateway, site or location', 'aria-label': 'Filter gateways' });
  const offline = h('input', { type: 'checkbox', id: 'offline-only' });
  const body = h('tbody');
  const status = h('p', { class: 'muted' }, 'Loading…');
  fill(root,
    h('div', { class: 'view-head' }, h('h1', {}, 'Fleet'), h('div', { class: 'tools' }, search, h('label', { for: 'offline-only', class: 'check' }, offline, ' offline only'))),
    tiles,
    h('div', { class: 'table-wrap' }, h('table', { class: 'grid fleet', id: 'fleet-table' },
      h('thead', {}, h('tr', {}, ['Status', 'Gateway', 'Site', 'Location', 'Devices', 'Backlog', 'Last seen', 'Alarms', 'Version'].map((c) => h('th', { scope: 'col' }, c)))),
      body)),
    status);

  const draw = () => {
    const all = [...state.gateways.values()];
    const online = all.filter((g) => g.online).length;
    const activeAlarms = [...state.alarms.values()].reduce((n, a) => n + a.total, 0);
    const critical = [...state.alarms.values()].reduce((n, a) => n + a.critical, 0);
    const backlog = all.reduce((n, g) => n + (g.backlog?.rows ?? 0), 0);
    fill(tiles,
      tile('Gateways', all.length, ''),
      tile('Online', online, online === all.length ? 'ok' : ''),
      tile('Offline', all.length - online, all.length - online > 0 ? 'warn' : 'ok'),
      tile('Active alarms', activeAlarms, critical > 0 ? 'crit' : activeAlarms > 0 ? 'warn' : 'ok', critical > 0 ? `${critical} critical` : ''),
      tile('Backlog', count(backlog), backlog > 0 ? 'warn' : '', 'readings waiting at gateways'));
    const f = state.filter.toLowerCase();
    const rows = all
      .filter((g) => (!state.offlineOnly || !g.online) && (!f || [g.id, g.site, g.location].some((s) => s?.toLowerCase().includes(f))))
      .sort((a, b) => Number(a.online) - Number(b.online) || (a.site ?? '').localeCompare(b.site ?? '') || a.id.localeCompare(b.id));
    const now = Date.now();
    fill(body, rows.map((g) => {
      const devices = Object.values(g.devices ?? {});
      const down = devices.filter((d) => d === 'down').length;
      const al = state.alarms.get(g.id);
      return h('tr', { 'data-gateway': g.id, class: g.online ? '' : 'offline' },
        h('td', {}, g.revoked ? badge('revoked', 'crit') : g.online ? badge('online', 'ok') : badge('offline', 'off')),
        h('td', {}, h('a', { href: `#/gateway/${encodeURIComponent(g.id)}` }, g.id)),
        h('td', {}, g.site ?? '—'),
        h('td', { class: 'muted' }, g.location ?? '—'),
        h('td', { class: 'num' }, devices.length === 0 ? '—' : down > 0 ? h('span', { class: 'warn-text' }, `${devices.length - down}/${devices.length} up`) : `${devices.length} up`),
        h('td', { class: 'num' }, backlogText(g.backlog)),
        h('td', { class: 'num', 'data-ts': g.lastSeen ?? '' }, ago(g.lastSeen, now)),
        h('td', { class: 'num' }, al ? badge(String(al.total), al.critical > 0 ? 'crit' : 'warn') : ''),
        h('td', { class: 'muted' }, g.version ?? '—'));
    }));
    fill(status, !state.loaded ? 'Loading…' : rows.length === all.length ? `${all.length} gateways` : `${rows.length} of ${all.length} gateways shown`);
  };
  const redraw = throttle(draw, 250);

  const load = async () => {
    try {
      const [gws, alarms] = await Promise.all([get('/api/v1/gateways'), get('/api/v1/alarms?state=active&limit=10000')]);
      state.gateways = new Map(gws.items.map((g) => [g.id, g]));
      state.alarms = new Map();
      for (const a of alarms.items) {
        const s = state.alarms.get(a.gateway) ?? { total: 0, critical: 0 };
        s.total++;
        if (a.severity === 'critical') s.critical++;
        state.alarms.set(a.gateway, s);
      }
      state.loaded = true;
      draw();
    } catch (err) {
      fill(status, ctx.error(err));
    }
  };

  const reload = throttle(() => void load(), 1000);
  search.addEventListener('input', () => {
    state.filter = search.value;
    draw();
  });
  offline.addEventListener('change', () => {
    state.offlineOnly = offline.checked;
    draw();
  });

  const live = stream({ types: 'gateways,events' }, (event, data) => {
    if (event === 'gateway') {
      const g = state.gateways.get(data.gateway);
      if (!g) return reload(); // a new gateway: fetch its registry view
      if (data.online !== undefined) g.online = data.online;
      if (data.status?.backlog) g.backlog = data.status.backlog;
      if (data.status?.devices) g.devices = data.status.devices;
      if (data.status?.version) g.version = data.status.version;
      g.lastSeen = Date.now();
      redraw();
    } else if (event === 'event' && data.type?.startsWith('alarm.')) {
      reload();
    }
  });
  void load();
  const tick = setInterval(() => {
    const now = Date.now();
    for (const td of body.querySelectorAll('td[data-ts]')) td.textContent = ago(Number(td.dataset.ts) || null, now);
  }, 1000);
  const refresh = setInterval(load, 30_000);
  return () => {
    live.close();
    clearInterval(tick);
    clearInterval(refresh);
  };
}

function tile(label, n, kind, note = '') {
  return h('div', { class: `tile ${kind ? `tile-${kind}` : ''}` }, h('div', { class: 'tile-n' }, String(n)), h('div', { class: 'tile-label' }, label), note ? h('div', { class: 'tile-note' }, note) : null);
}

function backlogText(b) {
  if (!b) return '—';
  if (!b.rows) return h('span', { class: 'muted' }, 'empty');
  return h('span', { class: 'warn-text', title: `${b.rows} readings waiting${b.drainPerS ? `, draining ${b.drainPerS}/s` : ''}` }, `${count(b.rows)}${b.ageS ? ` · ${duration(b.ageS)}` : ''}`);
}
