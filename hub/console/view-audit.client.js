// Audit log: who did what, to what, when, from where, and how it ended (operator role).
import { ApiError, get, qs } from './api.client.js';
import { badge, fill, h, when } from './dom.client.js';

export function render(root, _params, ctx) {
  const actor = h('input', { type: 'search', placeholder: 'Actor', 'aria-label': 'Filter by actor' });
  const action = h('input', { type: 'search', placeholder: 'Action prefix, e.g. config.', 'aria-label': 'Filter by action' });
  const body = h('tbody');
  const note = h('p', { class: 'muted' });
  fill(root, h('div', { class: 'view-head' }, h('h1', {}, 'Audit log'), h('form', { class: 'tools', onsubmit: (e) => {
    e.preventDefault();
    void load();
  } }, actor, action, h('button', { type: 'submit' }, 'Filter'))),
  h('div', { class: 'table-wrap' }, h('table', { class: 'grid audit', id: 'audit-table' },
    h('thead', {}, h('tr', {}, ['Time', 'Actor', 'Action', 'Target', 'Outcome', 'From', 'Detail'].map((c) => h('th', { scope: 'col' }, c)))), body)),
  note);

  const load = async () => {
    try {
      const { items } = await get(`/api/v1/audit${qs({ actor: actor.value.trim(), action: action.value.trim(), limit: 500 })}`);
      fill(body, items.map((e) => h('tr', {},
        h('td', { class: 'num' }, when(e.ts)), h('td', {}, e.actor), h('td', {}, h('code', {}, e.action)), h('td', { class: 'muted' }, e.target ?? '—'),
        h('td', {}, badge(e.outcome, e.outcome === 'ok' ? 'ok' : e.outcome === 'denied' ? 'warn' : 'crit')), h('td', { class: 'muted' }, e.source ?? '—'),
        h('td', { class: 'detail' }, e.detail ? JSON.stringify(e.detail) : ''))));
      fill(note, `${items.length} entries (newest first)`);
    } catch (err) {
      fill(note, err instanceof ApiError && err.status === 403 ? h('p', { class: 'error' }, 'The audit log needs the operator role.') : ctx.error(err));
    }
  };
  void load();
  return null;
}
