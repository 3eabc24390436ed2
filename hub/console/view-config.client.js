// Configuration: desired against reported per gateway (fleet table), and one
// gateway's page with its versions and an editor to push a new version;
// validation errors from the hub are shown inline with their JSON pointers.
// Uses the hub's remote-configuration API; where a hub does not offer it the
// page says so.
import { api, ApiError, getOptional, stream } from './api.client.js';
import { ago, badge, fill, h, when } from './dom.client.js';

/** The remote-configuration routes of the hub API. */
const CONFIG_API = {
  fleet: () => '/api/v1/config',
  gateway: (id) => `/api/v1/gateways/${encodeURIComponent(id)}/config`,
  push: (id) => `/api/v1/gateways/${encodeURIComponent(id)}/config`,
};

const UNAVAILABLE = 'This hub does not offer the remote-configuration API (issue 6), so desired and reported configurations cannot be shown here yet.';

export function render(root, params, ctx) {
  return params[0] ? gatewayPage(root, params[0], ctx) : fleetPage(root, ctx);
}

function statusBadge(status) {
  if (!status) return badge('unknown', 'off');
  const kind = { applied: 'ok', applying: 'warn', confirming: 'warn', pending: 'warn', rejected: 'crit', 'rolled-back': 'crit', failed: 'crit', lagging: 'warn', 'in-sync': 'ok' }[status] ?? 'off';
  return badge(status, kind);
}

function fleetPage(root, ctx) {
  const body = h('tbody');
  const note = h('p', { class: 'muted' }, 'Loading…');
  fill(root, h('div', { class: 'view-head' }, h('h1', {}, 'Configuration')),
    h('div', { class: 'table-wrap' }, h('table', { class: 'grid', id: 'config-table' },
      h('thead', {}, h('tr', {}, ['Gateway', 'Desired', 'Running', 'Status', 'Error', 'Pushed'].map((c) => h('th', { scope: 'col' }, c)))), body)),
    note);
  const load = async () => {
    try {
      const res = await getOptional(CONFIG_API.fleet());
      if (res === null) {
        fill(root, h('div', { class: 'view-head' }, h('h1', {}, 'Configuration')), h('p', { class: 'notice', id: 'config-unavailable' }, UNAVAILABLE));
        return;
      }
      const items = res.items ?? [];
      fill(body, items.map((g) => h('tr', { 'data-gateway': g.gateway },
        h('td', {}, h('a', { href: `#/config/${encodeURIComponent(g.gateway)}` }, g.gateway)),
        h('td', { class: 'num' }, g.desired?.version ?? '—'),
        h('td', { class: 'num' }, g.reported?.running?.version ?? '—'),
        h('td', {}, statusBadge(g.state ?? g.reported?.status)),
        h('td', { class: 'msg' }, g.reported?.error?.message ?? ''),
        h('td', { class: 'num muted' }, g.desired?.pushedAt ? `${ago(g.desired.pushedAt)} by ${g.desired.pushedBy ?? '?'}` : '—'))));
      fill(note, `${items.length} gateways`);
    } catch (err) {
      fill(note, ctx.error(err));
    }
  };
  void load();
  return null;
}

function gatewayPage(root, id, ctx) {
  const summary = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const editor = h('textarea', { class: 'editor', id: 'config-editor', spellcheck: 'false', 'aria-label': 'Desired configuration (JSON)' });
  const noteInput = h('input', { type: 'text', id: 'config-note', placeholder: 'Note (why this change)', maxlength: 256 });
  const pushBtn = h('button', { type: 'submit', class: 'primary', id: 'config-push' }, 'Push configuration');
  const result = h('div', { id: 'config-result', role: 'status' });
  const form = h('form', { class: 'panel' }, h('h2', {}, 'New version'), editor, h('div', { class: 'tools' }, noteInput, pushBtn), result);
  fill(root, h('p', { class: 'crumbs' }, h('a', { href: '#/config' }, 'Configuration'), ' / ', h('a', { href: `#/gateway/${encodeURIComponent(id)}` }, id)),
    h('h1', {}, `Configuration of ${id}`), summary, ctx.can('operator') ? form : h('p', { class: 'muted' }, 'Pushing a configuration needs the operator role.'));

  const load = async (fillEditor) => {
    try {
      const res = await getOptional(CONFIG_API.gateway(id));
      if (res === null) {
        fill(summary, h('p', { class: 'notice', id: 'config-unavailable' }, UNAVAILABLE));
        form.hidden = true;
        return;
      }
      const d = res.desired;
      const r = res.reported;
      fill(summary, h('div', { class: 'cols' },
        h('section', { class: 'panel' }, h('h2', {}, 'Desired'), d
          ? h('dl', { class: 'facts' }, fact('Version', h('span', { id: 'desired-version' }, String(d.version))), fact('Pushed', `${when(d.pushedAt)} by ${d.pushedBy}`), fact('Note', d.note ?? '—'))
          : h('p', { class: 'muted' }, 'No desired configuration yet: the gateway runs its own file.')),
        h('section', { class: 'panel' }, h('h2', {}, 'Reported'), r
          ? h('div', {}, h('dl', { class: 'facts' },
            fact('Running version', h('span', { id: 'reported-version' }, String(r.running?.version ?? '—'))), fact('Status', h('span', { id: 'reported-status' }, statusBadge(r.status))),
            fact('About version', String(r.version ?? '—')), fact('Reported', when(r.ts))),
          r.error ? h('div', {}, h('p', { class: 'error' }, `${r.error.code}: ${r.error.message}`), problemList(r.error.problems)) : null)
          : h('p', { class: 'muted' }, 'Nothing reported yet.'))));
      if (fillEditor && !editor.value) editor.value = JSON.stringify(d?.config ?? res.template ?? {}, null, 2);
    } catch (err) {
      fill(summary, ctx.error(err));
    }
  };

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    fill(result);
    let config;
    try {
      config = JSON.parse(editor.value);
    } catch (err) {
      fill(result, h('p', { class: 'error' }, `Not valid JSON: ${err.message}`));
      return;
    }
    pushBtn.disabled = true;
    try {
      const res = await api('POST', CONFIG_API.push(id), { config, ...(noteInput.value.trim() ? { note: noteInput.value.trim() } : {}) });
      fill(result, h('p', { class: 'ok-text', id: 'config-accepted' }, `Version ${res?.version ?? res?.desired?.version ?? ''} accepted; waiting for the gateway to report it.`));
      await load(false);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404 && /no route/.test(err.message)) fill(result, h('p', { class: 'notice' }, UNAVAILABLE));
      else fill(result, h('p', { class: 'error' }, err.message), problemList(err.body?.error?.problems ?? err.body?.error?.context?.problems));
    } finally {
      pushBtn.disabled = false;
    }
  });

  void load(true);
  // Reported versions arrive as gateway status and events; reload when this gateway says something.
  const live = stream({ gateway: id, types: 'events,gateways' }, (event, data) => {
    if (event === 'event' && !data.type?.startsWith('config.')) return;
    void load(false);
  });
  return () => live.close();
}

function fact(label, content) {
  return h('div', {}, h('dt', {}, label), h('dd', {}, content));
}

function problemList(problems) {
  if (!Array.isArray(problems) || problems.length === 0) return null;
  return h('ul', { class: 'problems', id: 'config-problems' }, problems.map((p) => h('li', {}, h('code', {}, p.pointer || '/'), ' ', p.message)));
}
