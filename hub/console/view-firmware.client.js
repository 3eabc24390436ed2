// Firmware rollouts with their progress, from the hub's firmware API; where a
// hub does not offer it the page says so.
import { getOptional, stream } from './api.client.js';
import { badge, fill, h, when } from './dom.client.js';

const ROLLOUTS = '/api/v1/firmware/rollouts';
const UNAVAILABLE = 'This hub does not offer the firmware API (issue 7), so rollouts cannot be shown here yet.';

export function render(root, _params, ctx) {
  const body = h('tbody');
  const note = h('p', { class: 'muted' }, 'Loading…');
  fill(root, h('div', { class: 'view-head' }, h('h1', {}, 'Firmware rollouts')),
    h('div', { class: 'table-wrap' }, h('table', { class: 'grid', id: 'rollouts-table' },
      h('thead', {}, h('tr', {}, ['Rollout', 'Target', 'Version', 'State', 'Progress', 'Updated', 'Failed', 'Started'].map((c) => h('th', { scope: 'col' }, c)))), body)),
    note);

  const load = async () => {
    try {
      const res = await getOptional(ROLLOUTS);
      if (res === null) {
        fill(root, h('div', { class: 'view-head' }, h('h1', {}, 'Firmware rollouts')), h('p', { class: 'notice', id: 'firmware-unavailable' }, UNAVAILABLE));
        return false;
      }
      const items = res.items ?? [];
      fill(body, items.length === 0 ? h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'No rollouts.')) : items.map((r) => {
        const p = r.progress ?? r.counts ?? {};
        const total = p.total ?? r.targets?.length ?? 0;
        const done = p.updated ?? 0;
        const failed = p.failed ?? 0;
        const running = Math.max(0, (p.inProgress ?? p.downloading ?? 0) + (p.updating ?? 0));
        const pct = (n) => (total > 0 ? `${(100 * n) / total}%` : '0');
        const bar = h('div', { class: 'progress', title: `${done} updated, ${running} in progress, ${failed} failed of ${total}` },
          h('span', { class: 'p-ok' }), h('span', { class: 'p-run' }), h('span', { class: 'p-fail' }));
        bar.children[0].style.width = pct(done);
        bar.children[1].style.width = pct(running);
        bar.children[2].style.width = pct(failed);
        return h('tr', { 'data-rollout': r.id },
          h('td', {}, r.name ?? r.id), h('td', { class: 'muted' }, r.model ?? r.target?.model ?? r.profile ?? '—'), h('td', {}, r.version ?? r.manifest?.version ?? '—'),
          h('td', {}, badge(r.state ?? '—', r.state === 'completed' ? 'ok' : r.state === 'stopped' || r.state === 'failed' ? 'crit' : r.state === 'paused' ? 'warn' : 'off')),
          h('td', {}, bar), h('td', { class: 'num' }, `${done} / ${total}`), h('td', { class: 'num' }, failed ? h('span', { class: 'error' }, String(failed)) : '0'),
          h('td', { class: 'num muted' }, when(r.createdAt ?? r.startedAt)));
      }));
      fill(note, `${items.length} rollouts`);
      return true;
    } catch (err) {
      fill(note, ctx.error(err));
      return false;
    }
  };
  let live = null;
  void load().then((ok) => {
    if (!ok) return;
    live = stream({ types: 'events' }, (event, data) => {
      if (event === 'event' && data.type?.startsWith('fw.')) void load();
    });
  });
  const refresh = setInterval(() => void load(), 10_000);
  return () => {
    live?.close();
    clearInterval(refresh);
  };
}
