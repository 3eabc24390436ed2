// Alarms: active and recently cleared, with acknowledgement for operators; updated live.
import { api, get, stream } from './api.client.js';
import { badge, fill, h, throttle, value, when } from './dom.client.js';

export function render(root, _params, ctx) {
  let tab = 'active';
  const body = h('tbody');
  const note = h('p', { class: 'muted' });
  const tabs = h('div', { class: 'tabs', role: 'tablist' });
  fill(root, h('div', { class: 'view-head' }, h('h1', {}, 'Alarms'), tabs),
    h('div', { class: 'table-wrap' }, h('table', { class: 'grid alarms', id: 'alarms-table' },
      h('thead', {}, h('tr', {}, ['Severity', 'Gateway', 'Device · point', 'Message', 'Value', 'Raised', 'Cleared', 'Acknowledged'].map((c) => h('th', { scope: 'col' }, c)))), body)),
    note);

  const drawTabs = () => fill(tabs, ['active', 'cleared', 'all'].map((t) => h('button', { type: 'button', role: 'tab', 'aria-selected': t === tab ? 'true' : 'false', class: t === tab ? 'active' : '', onclick: () => {
    tab = t;
    drawTabs();
    void load();
  } }, t[0].toUpperCase() + t.slice(1))));

  const ack = async (a, btn) => {
    btn.disabled = true;
    try {
      await api('POST', `/api/v1/alarms/${a.id}/ack`);
      await load();
    } catch (err) {
      btn.replaceWith(ctx.error(err));
    }
  };

  const load = async () => {
    try {
      const { items } = await get(`/api/v1/alarms?state=${tab}&limit=1000`);
      fill(body, items.length === 0 ? h('tr', {}, h('td', { colspan: 8, class: 'muted' }, tab === 'active' ? 'No active alarms.' : 'No alarms.')) : items.map((a) => h('tr', { class: `sev-${a.severity} ${a.state}`, 'data-alarm': a.id },
        h('td', {}, badge(a.severity, a.severity === 'critical' ? 'crit' : 'warn'), a.state === 'cleared' ? h('span', { class: 'muted' }, ' cleared') : null),
        h('td', {}, h('a', { href: `#/gateway/${encodeURIComponent(a.gateway)}` }, a.gateway)),
        h('td', {}, `${a.device} · ${a.point}`),
        h('td', { class: 'msg' }, a.message),
        h('td', { class: 'num' }, value(a.value), a.threshold !== null ? h('span', { class: 'muted' }, ` (${a.limit} ${value(a.threshold)})`) : null,
          a.malformed ? h('span', { class: 'muted', title: 'stored data of an older version or damaged: shown as empty' }, ` unreadable: ${a.malformed.join(', ')}`) : null),
        h('td', { class: 'num' }, when(a.raisedAt)),
        h('td', { class: 'num' }, a.clearedAt ? when(a.clearedAt) : '—'),
        h('td', {}, a.ackedAt ? h('span', { class: 'muted', title: when(a.ackedAt) }, a.ackedBy.replace(/^token:[^/]+\//, '')) : ctx.can('operator') ? h('button', { type: 'button', class: 'small', onclick: (e) => ack(a, e.currentTarget) }, 'Acknowledge') : '—'))));
      fill(note, `${items.length} ${tab === 'all' ? '' : `${tab} `}alarm${items.length === 1 ? '' : 's'}`);
      void ctx.refreshAlarmCount();
    } catch (err) {
      fill(note, ctx.error(err));
    }
  };

  drawTabs();
  void load();
  const reload = throttle(() => void load(), 500);
  const live = stream({ types: 'events' }, (event, data) => {
    if (event === 'event' && data.type?.startsWith('alarm.')) reload();
  });
  return () => live.close();
}
