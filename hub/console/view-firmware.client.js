// Firmware rollouts with their progress (stages, updated / in progress / failed),
// one rollout's jobs per device, and pause / resume / cancel for operators.
// Uses the hub's firmware API; where a hub does not offer it the page says so.
import { api, getOptional, stream } from './api.client.js';
import { badge, count, fill, h, when } from './dom.client.js';

const ROLLOUTS = '/api/v1/firmware/rollouts';
const UNAVAILABLE = 'This hub does not offer the firmware API (issue 7), so rollouts cannot be shown here yet.';
const STATE_KIND = { completed: 'ok', running: 'warn', paused: 'warn', stopped: 'crit', cancelled: 'off' };
const JOB_KIND = { updated: 'ok', failed: 'crit', cancelled: 'off', pending: 'off' };

export function render(root, _params, ctx) {
  const body = h('tbody');
  const note = h('p', { class: 'muted' }, 'Loading…');
  const detail = h('section', { class: 'panel', id: 'rollout-detail', hidden: true });
  let selected = null;
  fill(root, h('div', { class: 'view-head' }, h('h1', {}, 'Firmware rollouts')),
    h('div', { class: 'table-wrap' }, h('table', { class: 'grid', id: 'rollouts-table' },
      h('thead', {}, h('tr', {}, ['Rollout', 'Model', 'Version', 'State', 'Stage', 'Progress', 'Updated', 'Failed', 'Started'].map((c) => h('th', { scope: 'col' }, c)))), body)),
    note, detail);

  const act = async (id, action, btn) => {
    btn.disabled = true;
    try {
      await api('POST', `${ROLLOUTS}/${encodeURIComponent(id)}/${action}`);
      await load();
    } catch (err) {
      btn.replaceWith(ctx.error(err));
    }
  };

  const showDetail = async (id) => {
    selected = id;
    detail.hidden = false;
    try {
      const r = await api('GET', `${ROLLOUTS}/${encodeURIComponent(id)}`);
      const actions = ctx.can('operator') ? [
        r.state === 'running' ? h('button', { type: 'button', onclick: (e) => act(id, 'pause', e.currentTarget) }, 'Pause') : null,
        r.state === 'paused' || r.state === 'stopped' ? h('button', { type: 'button', onclick: (e) => act(id, 'resume', e.currentTarget) }, 'Resume') : null,
        r.state !== 'completed' && r.state !== 'cancelled' ? h('button', { type: 'button', onclick: (e) => act(id, 'cancel', e.currentTarget) }, 'Cancel') : null,
      ] : [];
      fill(detail, h('div', { class: 'view-head' }, h('h2', { class: 'plain' }, `Rollout ${r.id}: ${r.model} → ${r.version}`), h('div', { class: 'tools' }, actions)),
        r.reason ? h('p', { class: 'warn-text' }, r.reason) : null,
        h('table', { class: 'grid compact', id: 'rollout-jobs' },
          h('thead', {}, h('tr', {}, ['Gateway', 'Device', 'Stage', 'Status', 'State', 'Transferred', 'Version', 'Error', 'Updated'].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, (r.jobs ?? []).map((j) => h('tr', {},
            h('td', {}, h('a', { href: `#/gateway/${encodeURIComponent(j.gateway)}` }, j.gateway)), h('td', {}, j.device), h('td', { class: 'num' }, String(j.stage + 1)),
            h('td', {}, badge(j.status, JOB_KIND[j.status] ?? 'warn')), h('td', { class: 'muted' }, j.state ?? '—'),
            h('td', { class: 'num' }, j.total ? `${Math.round((100 * (j.bytes ?? 0)) / j.total)} % of ${count(j.total)} B` : '—'),
            h('td', {}, j.version ?? '—'), h('td', { class: 'msg error' }, j.error ? `${j.error.code}: ${j.error.message}` : ''), h('td', { class: 'num muted' }, when(j.updatedAt)))))));
    } catch (err) {
      fill(detail, ctx.error(err));
    }
  };

  const load = async () => {
    try {
      const res = await getOptional(ROLLOUTS);
      if (res === null) {
        fill(root, h('div', { class: 'view-head' }, h('h1', {}, 'Firmware rollouts')), h('p', { class: 'notice', id: 'firmware-unavailable' }, UNAVAILABLE));
        return false;
      }
      const items = res.items ?? [];
      fill(body, items.length === 0 ? h('tr', {}, h('td', { colspan: 9, class: 'muted' }, 'No rollouts yet. Operators start them with ioc-edge fw or the API.')) : items.map((r) => {
        const p = r.progress ?? {};
        const total = p.total ?? 0;
        const done = p.updated ?? 0;
        const failed = p.failed ?? 0;
        const running = p.inProgress ?? (p.offered ?? 0) + (p.downloading ?? 0) + (p.downloaded ?? 0) + (p.updating ?? 0);
        const pct = (n) => (total > 0 ? `${(100 * n) / total}%` : '0');
        const bar = h('div', { class: 'progress', title: `${done} updated, ${running} in progress, ${failed} failed, ${p.pending ?? 0} waiting, of ${total}` },
          h('span', { class: 'p-ok' }), h('span', { class: 'p-run' }), h('span', { class: 'p-fail' }));
        bar.children[0].style.width = pct(done);
        bar.children[1].style.width = pct(running);
        bar.children[2].style.width = pct(failed);
        return h('tr', { 'data-rollout': r.id, class: selected === r.id ? 'selected' : '' },
          h('td', {}, h('a', { href: '#/firmware', onclick: (e) => {
            e.preventDefault();
            void showDetail(r.id);
          } }, r.id)),
          h('td', { class: 'muted' }, r.model ?? '—'), h('td', {}, r.version ?? '—'),
          h('td', {}, badge(r.state ?? '—', STATE_KIND[r.state] ?? 'off')),
          h('td', { class: 'num' }, r.stages ? `${Math.min(r.stage + 1, r.stages)} / ${r.stages}` : '—'),
          h('td', {}, bar), h('td', { class: 'num' }, `${done} / ${total}`), h('td', { class: 'num' }, failed ? h('span', { class: 'error' }, String(failed)) : '0'),
          h('td', { class: 'num muted' }, `${when(r.createdAt)}${r.createdBy ? ` by ${r.createdBy.replace(/^token:[^/]+\//, '')}` : ''}`));
      }));
      fill(note, `${items.length} rollout${items.length === 1 ? '' : 's'}`);
      if (selected) void showDetail(selected);
      return true;
    } catch (err) {
      fill(note, ctx.error(err));
      return false;
    }
  };
  let live = null;
  let refresh = null;
  void load().then((ok) => {
    if (!ok) return;
    live = stream({ types: 'events' }, (event, data) => {
      if (event === 'event' && data.type?.startsWith('fw.')) void load();
    });
    refresh = setInterval(() => void load(), 10_000);
  });
  return () => {
    live?.close();
    if (refresh) clearInterval(refresh);
  };
}
