// Configuration: desired against reported per gateway (fleet table), and one
// gateway's page with its versions and an editor to push a new version;
// validation errors from the hub are shown inline with their JSON pointers.
// Uses the hub's remote-configuration API; where a hub does not offer it the
// page says so.
import { api, ApiError, getOptional, stream } from './api.client.js';
import { ago, badge, fill, h, when } from './dom.client.js';

/** The remote-configuration routes of the hub API. */
const CONFIG_API = {
  fleet: () => '/api/v1/config/fleet',
  gateway: (id) => `/api/v1/gateways/${encodeURIComponent(id)}/config`,
  push: (id) => `/api/v1/gateways/${encodeURIComponent(id)}/config`,
  versions: (id) => `/api/v1/gateways/${encodeURIComponent(id)}/config/versions?limit=20`,
  diff: (id, to) => `/api/v1/gateways/${encodeURIComponent(id)}/config/diff?to=${to}`,
};

const UNAVAILABLE = 'This hub does not offer the remote-configuration API (issue 6), so desired and reported configurations cannot be shown here yet.';

export function render(root, params, ctx) {
  return params[0] ? gatewayPage(root, params[0], ctx) : fleetPage(root, ctx);
}

function statusBadge(status) {
  if (!status) return badge('unknown', 'off');
  const kind = { applied: 'ok', 'in-sync': 'ok', applying: 'warn', confirming: 'warn', pending: 'warn', diverged: 'warn', rejected: 'crit', 'rolled-back': 'crit', failed: 'crit' }[status] ?? 'off';
  return badge(status, kind);
}

function fleetPage(root, ctx) {
  const body = h('tbody');
  const note = h('p', { class: 'muted' }, 'Loading…');
  fill(root, h('div', { class: 'view-head' }, h('h1', {}, 'Configuration')),
    h('div', { class: 'table-wrap' }, h('table', { class: 'grid', id: 'config-table' },
      h('thead', {}, h('tr', {}, ['Gateway', 'State', 'Desired', 'Running', 'Why', 'Pushed'].map((c) => h('th', { scope: 'col' }, c)))), body)),
    note);
  const load = async () => {
    try {
      const res = await getOptional(CONFIG_API.fleet());
      if (res === null) {
        fill(root, h('div', { class: 'view-head' }, h('h1', {}, 'Configuration')), h('p', { class: 'notice', id: 'config-unavailable' }, UNAVAILABLE));
        return;
      }
      const items = res.items ?? [];
      fill(body, items.map((g) => h('tr', { 'data-gateway': g.gateway, class: g.online ? '' : 'offline' },
        h('td', {}, h('a', { href: `#/config/${encodeURIComponent(g.gateway)}` }, g.gateway)),
        h('td', {}, statusBadge(g.state)),
        h('td', { class: 'num' }, g.desired?.version ?? '—'),
        h('td', { class: 'num' }, g.reported?.running?.version ?? '—', g.behind > 0 ? h('span', { class: 'warn-text' }, ` (${g.behind} behind)`) : null),
        h('td', { class: 'msg' }, g.why ?? g.reported?.error?.message ?? ''),
        h('td', { class: 'num muted' }, g.desired?.pushedAt ? `${ago(g.desired.pushedAt)} by ${(g.desired.pushedBy ?? '?').replace(/^token:[^/]+\//, '')}` : '—'))));
      const sum = res.summary ?? {};
      fill(note, `${items.length} gateways` + Object.entries(sum).filter(([k, n]) => k !== 'total' && n > 0).map(([k, n]) => ` · ${n} ${k}`).join(''));
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

  let baseVersion;
  const versions = h('section', { class: 'panel', id: 'config-versions' });
  root.append(versions);
  const loadVersions = async () => {
    try {
      const { items } = await getOptional(CONFIG_API.versions(id)) ?? { items: [] };
      fill(versions, h('h2', {}, 'Versions'), items.length === 0 ? h('p', { class: 'muted' }, 'None pushed yet.') : h('table', { class: 'grid compact' },
        h('thead', {}, h('tr', {}, ['Version', 'Pushed', 'By', 'Note', ''].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, items.map((v) => h('tr', {}, h('td', { class: 'num' }, String(v.version)), h('td', { class: 'num' }, when(v.pushedAt)), h('td', {}, v.pushedBy.replace(/^token:[^/]+\//, '')),
          h('td', { class: 'muted' }, v.note ?? ''), h('td', {}, v.version > 1 ? h('button', { type: 'button', class: 'small', onclick: () => showDiff(v.version) }, 'diff') : ''))))));
    } catch (err) {
      fill(versions, ctx.error(err));
    }
  };
  const showDiff = async (to) => {
    try {
      const d = await api('GET', CONFIG_API.diff(id, to));
      versions.append(h('div', {}, h('h3', {}, `Changes from version ${d.from} to ${d.to}`), h('pre', { class: 'json' }, d.changes.map((c) => `${c.op ?? ''} ${c.path ?? c.pointer ?? ''} ${c.from !== undefined ? JSON.stringify(c.from) : ''}${c.to !== undefined ? ` → ${JSON.stringify(c.to)}` : ''}`).join('\n') || 'no changes')));
    } catch (err) {
      versions.append(ctx.error(err));
    }
  };

  const load = async (fillEditor) => {
    try {
      const res = await getOptional(CONFIG_API.gateway(id));
      if (res === null) {
        fill(summary, h('p', { class: 'notice', id: 'config-unavailable' }, UNAVAILABLE));
        form.hidden = true;
        return;
      }
      const d = res.desired ? { ...res.desired, config: res.document?.config } : null;
      const r = res.reported;
      fill(summary, h('div', { class: 'cols' },
        h('section', { class: 'panel' }, h('h2', {}, 'Desired'), d
          ? h('dl', { class: 'facts' }, fact('Version', h('span', { id: 'desired-version' }, String(d.version))), fact('State', h('span', { id: 'config-state' }, statusBadge(res.state))),
            fact('Pushed', `${when(d.pushedAt)} by ${d.pushedBy.replace(/^token:[^/]+\//, '')}`), fact('Note', d.note ?? '—'))
          : h('p', { class: 'muted' }, 'No desired configuration yet: the gateway runs its own file.'),
        res.why ? h('p', { class: 'warn-text', id: 'config-why' }, res.why) : null),
        h('section', { class: 'panel' }, h('h2', {}, 'Reported'), r
          ? h('div', {}, h('dl', { class: 'facts' },
            fact('Running version', h('span', { id: 'reported-version' }, String(r.running?.version ?? '—'))), fact('Status', h('span', { id: 'reported-status' }, statusBadge(r.status))),
            fact('About version', String(r.version ?? '—')), fact('Reported', when(r.ts)),
            r.restarted ? fact('Restarted', [...(r.restarted.buses ?? []).map((b) => `bus ${b}`), ...(r.restarted.devices ?? []), ...(r.restarted.uplink ? ['uplink'] : [])].join(', ') || 'nothing') : null,
            r.pending?.length ? fact('Needs a restart', r.pending.join(', ')) : null),
          r.error ? h('div', {}, h('p', { class: 'error' }, `${r.error.code}: ${r.error.message}`), problemList(r.error.problems)) : null)
          : h('p', { class: 'muted' }, 'Nothing reported yet.'))));
      if (fillEditor && !editor.value) editor.value = JSON.stringify(d?.config ?? {}, null, 2);
      baseVersion = d?.version ?? 0;
      void loadVersions();
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
      const res = await api('POST', CONFIG_API.push(id), { config, ...(noteInput.value.trim() ? { note: noteInput.value.trim() } : {}), ...(baseVersion !== undefined ? { baseVersion } : {}) });
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
