// One gateway: identity and state, its field devices, live readings (updated
// from the live stream without reloading), a trend of the selected point
// (downsampled history), active alarms and recent events.
import { ApiError, get, qs, stream } from './api.client.js';
import { ago, badge, count, duration, fill, h, throttle, value, when } from './dom.client.js';
import { trendChart } from './trend.client.js';

const MAX_EVENTS = 50;

export function render(root, [id], ctx) {
  const st = { view: null, readings: new Map(), events: [], alarms: [], selected: null };
  const head = h('div', { class: 'gw-head' }, h('p', { class: 'muted' }, 'Loading…'));
  const devicesBody = h('tbody');
  const readingsBody = h('tbody');
  const eventsList = h('ol', { class: 'events', id: 'gateway-events' });
  const alarmsBox = h('div', { id: 'gateway-alarms' });
  const trendBox = h('div', { class: 'trend', id: 'trend' }, h('p', { class: 'muted' }, 'Select a reading to see its last hour.'));
  fill(root,
    h('p', { class: 'crumbs' }, h('a', { href: '#/fleet' }, 'Fleet'), ' / ', id),
    head,
    h('div', { class: 'cols' },
      h('section', { class: 'panel wide' }, h('h2', {}, 'Live readings'),
        h('div', { class: 'table-wrap' }, h('table', { class: 'grid readings', id: 'readings-table' },
          h('thead', {}, h('tr', {}, ['Device', 'Point', 'Value', 'Quality', 'Sampled'].map((c) => h('th', { scope: 'col' }, c)))), readingsBody)),
        trendBox),
      h('div', { class: 'side' },
        h('section', { class: 'panel' }, h('h2', {}, 'Active alarms'), alarmsBox),
        h('section', { class: 'panel' }, h('h2', {}, 'Devices'), h('table', { class: 'grid compact' },
          h('thead', {}, h('tr', {}, ['Device', 'Profile', 'Bus', 'Health'].map((c) => h('th', { scope: 'col' }, c)))), devicesBody)),
        h('section', { class: 'panel' }, h('h2', {}, 'Events'), eventsList))));

  const drawHead = () => {
    const g = st.view;
    if (!g) return;
    fill(head,
      h('h1', {}, g.id, ' ', g.revoked ? badge('revoked', 'crit') : g.online ? badge('online', 'ok') : badge('offline', 'off')),
      h('dl', { class: 'facts' },
        fact('Site', g.site ?? '—'), fact('Location', g.location ?? '—'), fact('Last seen', h('span', { 'data-ts': g.lastSeen ?? '' }, ago(g.lastSeen))),
        fact('Backlog', g.backlog ? `${count(g.backlog.rows)} readings${g.backlog.ageS ? `, oldest ${duration(g.backlog.ageS)}` : ''}${g.backlog.drainPerS ? `, draining ${count(g.backlog.drainPerS)}/s` : ''}` : '—'),
        fact('Version', g.version ?? '—'), fact('Firmware', g.firmware ?? '—'), fact('Host', g.hostname ?? '—'),
        fact('Configuration', h('a', { href: `#/config/${encodeURIComponent(g.id)}` }, 'desired / reported'))));
  };

  const drawDevices = () => {
    const g = st.view;
    const health = g?.devices ?? {};
    const list = g?.fieldDevices?.length ? g.fieldDevices : Object.keys(health).map((d) => ({ id: d }));
    fill(devicesBody, list.length === 0 ? h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'No devices reported yet.')) : list.map((d) => h('tr', {},
      h('td', {}, d.id), h('td', { class: 'muted' }, d.profile ?? '—'), h('td', { class: 'muted', title: d.address ?? '' }, d.bus ?? '—'),
      h('td', {}, healthBadge(health[d.id])))));
  };

  const drawReadings = () => {
    const rows = [...st.readings.values()].sort((a, b) => a.device.localeCompare(b.device) || a.point.localeCompare(b.point));
    const now = Date.now();
    fill(readingsBody, rows.length === 0 ? h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No readings yet.')) : rows.map((r) => {
      const key = `${r.device}/${r.point}`;
      return h('tr', { 'data-key': key, class: `${st.selected === key ? 'selected' : ''} ${r.flash ? 'flash' : ''}`, tabindex: 0, onclick: () => select(r), onkeydown: (e) => e.key === 'Enter' && select(r) },
        h('td', {}, r.device), h('td', {}, r.point), h('td', { class: 'num value' }, value(r.value)),
        h('td', {}, r.quality === 'good' ? h('span', { class: 'muted' }, 'good') : badge(r.quality, r.quality === 'bad' ? 'crit' : 'warn')),
        h('td', { class: 'num muted', 'data-ts': r.ts }, ago(r.ts, now)));
    }));
    for (const r of rows) r.flash = false;
  };
  const redrawReadings = throttle(drawReadings, 200);

  const drawAlarms = () => {
    fill(alarmsBox, st.alarms.length === 0 ? h('p', { class: 'muted' }, 'None.') : h('ul', { class: 'alarm-list' }, st.alarms.map((a) => h('li', { class: `sev-${a.severity}` },
      badge(a.severity, a.severity === 'critical' ? 'crit' : 'warn'), ' ', h('strong', {}, `${a.device}.${a.point}`), ' ', a.message, h('div', { class: 'muted' }, `since ${when(a.raisedAt)}`)))));
  };

  const drawEvents = () => {
    fill(eventsList, st.events.length === 0 ? h('li', { class: 'muted' }, 'No events.') : st.events.map((e) => h('li', { class: `sev-${e.severity}` },
      h('span', { class: 'ev-time' }, when(e.ts)), ' ', h('span', { class: 'ev-type' }, e.type), e.device ? h('span', { class: 'muted' }, ` ${e.device}${e.point ? `.${e.point}` : ''}`) : null,
      h('div', { class: 'ev-msg' }, e.message))));
  };

  const select = async (r) => {
    st.selected = `${r.device}/${r.point}`;
    drawReadings();
    const to = Date.now();
    const from = to - 3_600_000;
    fill(trendBox, h('p', { class: 'muted' }, `Loading ${r.device}.${r.point}…`));
    try {
      const res = await get(`/api/v1/readings/buckets${qs({ gateway: id, device: r.device, point: r.point, from, to, bucketMs: 60_000 })}`);
      fill(trendBox, h('h3', {}, `${r.device}.${r.point} — last hour, min / avg / max per minute`), trendChart(res.items, from, to));
    } catch (err) {
      fill(trendBox, ctx.error(err));
    }
  };

  const loadAlarms = async () => {
    st.alarms = (await get(`/api/v1/alarms?state=active&gateway=${encodeURIComponent(id)}`)).items;
    drawAlarms();
  };

  const load = async () => {
    try {
      const [view, latest, events] = await Promise.all([
        get(`/api/v1/gateways/${encodeURIComponent(id)}`),
        get(`/api/v1/readings/latest?gateway=${encodeURIComponent(id)}`),
        get(`/api/v1/events?gateway=${encodeURIComponent(id)}&limit=${MAX_EVENTS}`),
      ]);
      st.view = view;
      for (const r of latest.items) st.readings.set(`${r.device}/${r.point}`, r);
      st.events = events.items;
      drawHead();
      drawDevices();
      drawReadings();
      drawEvents();
      await loadAlarms();
    } catch (err) {
      fill(head, err instanceof ApiError && err.status === 404 ? h('p', { class: 'error' }, `No gateway '${id}'.`) : ctx.error(err));
    }
  };

  const live = stream({ gateway: id }, (event, data) => {
    if (event === 'readings') {
      for (const r of data.readings) {
        const key = `${r.device}/${r.point}`;
        const prev = st.readings.get(key);
        if (prev && prev.ts > r.ts) continue;
        st.readings.set(key, { ...r, gateway: data.gateway, flash: !prev || prev.value !== r.value });
      }
      redrawReadings();
    } else if (event === 'event') {
      st.events = [data, ...st.events].slice(0, MAX_EVENTS);
      drawEvents();
      if (data.type.startsWith('alarm.')) void loadAlarms();
      if ((data.type === 'device.up' || data.type === 'device.down') && data.device && st.view) {
        st.view.devices = { ...st.view.devices, [data.device]: data.type === 'device.up' ? 'up' : 'down' };
        drawDevices();
      }
    } else if (event === 'gateway' && st.view) {
      if (data.online !== undefined) st.view.online = data.online;
      if (data.status?.backlog) st.view.backlog = data.status.backlog;
      if (data.status?.devices) st.view.devices = data.status.devices;
      if (data.status?.version) st.view.version = data.status.version;
      st.view.lastSeen = Date.now();
      drawHead();
      drawDevices();
    }
  });
  void load();
  const tick = setInterval(() => {
    const now = Date.now();
    for (const el of root.querySelectorAll('[data-ts]')) el.textContent = ago(Number(el.dataset.ts) || null, now);
  }, 1000);
  return () => {
    live.close();
    clearInterval(tick);
  };
}

function fact(label, content) {
  return h('div', {}, h('dt', {}, label), h('dd', {}, content));
}

function healthBadge(health) {
  if (health === 'up') return badge('up', 'ok');
  if (health === 'down') return badge('down', 'crit');
  return badge(health ?? 'unknown', 'off');
}
