// The operator console's shell: sign-in with an API token, hash routes, the
// live-stream indicator and the active-alarm count in the navigation.
import { ApiError, get, session, stream } from './api.client.js';
import { fill, h } from './dom.client.js';
import * as alarms from './view-alarms.client.js';
import * as audit from './view-audit.client.js';
import * as config from './view-config.client.js';
import * as firmware from './view-firmware.client.js';
import * as fleet from './view-fleet.client.js';
import * as gateway from './view-gateway.client.js';

const ROUTES = [
  [/^#\/fleet$/, fleet, 'fleet'],
  [/^#\/gateway\/([^/]+)$/, gateway, 'fleet'],
  [/^#\/alarms$/, alarms, 'alarms'],
  [/^#\/config$/, config, 'config'],
  [/^#\/config\/([^/]+)$/, config, 'config'],
  [/^#\/firmware$/, firmware, 'firmware'],
  [/^#\/audit$/, audit, 'audit'],
];

const $ = (id) => document.getElementById(id);
let cleanup = null;
let alarmStream = null;

/** What every view gets: the role check and a way to report errors. */
const ctx = {
  can(role) {
    const rank = { viewer: 0, operator: 1, admin: 2 };
    return (rank[session.who?.role] ?? -1) >= rank[role];
  },
  /** A readable error block for a failed call. */
  error(err) {
    if (err instanceof ApiError && err.status === 401) {
      signOut('Your token is no longer valid. Sign in again.');
      return h('p', { class: 'error' }, 'Signed out.');
    }
    return h('p', { class: 'error', role: 'alert' }, err instanceof ApiError ? err.message : `Error: ${err?.message ?? err}`);
  },
  refreshAlarmCount,
};

async function refreshAlarmCount() {
  try {
    const { items } = await get('/api/v1/alarms?state=active&limit=10000');
    const el = $('nav-alarms');
    el.textContent = String(items.length);
    el.hidden = items.length === 0;
    el.classList.toggle('critical', items.some((a) => a.severity === 'critical'));
  } catch {
    /* the count is a hint; the alarms page shows errors */
  }
}

function route() {
  if (!session.who) return;
  const hash = location.hash || '#/fleet';
  const hit = ROUTES.find(([re]) => re.test(hash));
  if (!hit) {
    location.hash = '#/fleet';
    return;
  }
  const [re, view, nav] = hit;
  const params = hash.match(re).slice(1).map(decodeURIComponent);
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.view === nav);
  if (cleanup) cleanup();
  cleanup = null;
  const root = fill($('view'));
  root.dataset.view = nav;
  try {
    cleanup = view.render(root, params, ctx) ?? null;
  } catch (err) {
    fill(root, ctx.error(err));
  }
}

function setLive(on) {
  const el = $('live');
  el.classList.toggle('on', on);
  el.textContent = on ? 'live' : 'reconnecting…';
}

async function signIn(token) {
  session.token = token;
  session.who = await get('/api/v1/whoami');
  $('login').hidden = true;
  $('nav').hidden = false;
  $('logout').hidden = session.who.actor === 'anonymous';
  fill($('who'), h('span', { class: 'actor' }, session.who.actor.replace(/^token:[^/]+\//, '')), ' ', h('span', { class: `role role-${session.who.role}` }, session.who.role));
  alarmStream?.close();
  alarmStream = stream({ types: 'events,gateways' }, (event, data) => {
    if (event === 'event' && data.type?.startsWith('alarm.')) void refreshAlarmCount();
  }, setLive);
  void refreshAlarmCount();
  route();
}

function signOut(message = '') {
  session.token = null;
  session.who = null;
  alarmStream?.close();
  alarmStream = null;
  if (cleanup) cleanup();
  cleanup = null;
  fill($('view'));
  fill($('who'));
  $('nav').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  $('token').focus();
}

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const token = $('token').value.trim();
  $('login-error').textContent = '';
  try {
    await signIn(token);
    $('token').value = '';
  } catch (err) {
    session.token = null;
    $('login-error').textContent = err instanceof ApiError && err.status === 401 ? 'That token is unknown or revoked.' : `Sign-in failed: ${err.message}`;
  }
});
$('logout').addEventListener('click', () => signOut());
window.addEventListener('hashchange', route);

// A stored token, or a hub without authentication (loopback demo), signs in at once.
signIn(session.token).catch(() => signOut());
