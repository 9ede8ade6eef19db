// The dashboard's shell: hash routing between the views, the login form,
// the state of the live connections, the theme switch.
import {h, replace, field, errorText} from './dom.js';
import {token, setToken, get} from './api.js';
import * as overview from './overview.js';
import * as inspector from './inspector.js';
import * as publish from './publish.js';
import * as queues from './queues.js';
import * as audit from './audit.js';
import * as agents from './agents.js';

const routes = {
  overview: {title: 'Overview', module: overview},
  inspect: {title: 'Topic inspector', module: inspector},
  publish: {title: 'Publish', module: publish},
  queues: {title: 'Queues', module: queues},
  audit: {title: 'Audit', module: audit},
  agents: {title: 'Agents', module: agents},
};

const views = {}; // made once, kept: subscriptions live on across views
let current = null;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [name, query] = raw.split('?');
  return {name: routes[name] ? name : 'overview', params: new URLSearchParams(query || '')};
}

export function navigate(name, params = {}) {
  const q = new URLSearchParams(params).toString();
  location.hash = `#/${name}${q ? '?' + q : ''}`;
}

function route(focus) {
  if (location.hash && !location.hash.startsWith('#/')) return; // an in-page anchor
  const {name, params} = parseHash();
  const main = document.getElementById('main');
  if (!views[name]) {
    views[name] = routes[name].module.create({navigate});
    main.append(views[name].el);
  }
  if (current && current !== views[name]) {
    current.hide();
    current.el.hidden = true;
  }
  current = views[name];
  current.el.hidden = false;
  current.show(params);
  document.title = `${routes[name].title} · Mercury`;
  for (const a of document.querySelectorAll('nav.views a')) {
    if (a.dataset.view === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (focus) {
    const heading = current.el.querySelector('h1');
    if (heading) heading.focus();
  }
}

// The login form appears when the API answers 401.
function setupLogin() {
  const panel = document.getElementById('login');
  const reason = h('p', {class: 'login-reason', id: 'login-reason'});
  const input = h('input', {type: 'password', name: 'token', id: 'login-token', autocomplete: 'off', required: true, spellcheck: 'false'});
  const form = h('form', {class: 'login-form', 'aria-describedby': 'login-reason'},
    h('h2', {}, 'Log in'),
    reason,
    field('Token or API key', input, 'Kept in this tab only (sessionStorage); sent as Authorization: Bearer, and by mercury.js at each WebSocket\'s handshake.'),
    h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'primary'}, 'Log in')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const t = input.value.trim();
    if (!t) return;
    setToken(t);
    input.value = '';
    panel.hidden = true;
    // A 401 here shows the form again with the reason.
    const res = await get('/api/queues').catch((e) => ({status: 0, text: e.message}));
    if (res.status !== 401 && current) current.show(parseHash().params, true);
  });
  replace(panel, form);
  window.addEventListener('mercury:unauthorized', (ev) => {
    const wasHidden = panel.hidden;
    reason.textContent = token()
      ? `The broker refused this credential (${errorText(ev.detail)}). Enter another one.`
      : `The broker asks for a credential (${errorText(ev.detail)}).`;
    panel.hidden = false;
    if (wasHidden) input.focus();
  });
  const logout = document.getElementById('logout');
  const who = document.getElementById('who');
  const update = () => {
    logout.hidden = !token();
    who.textContent = token() ? 'Logged in with a token' : '';
  };
  logout.addEventListener('click', () => {
    setToken('');
    if (current) current.show(parseHash().params, true);
  });
  window.addEventListener('mercury:token', update);
  update();
}

// The theme follows the system unless the reader picks one; the choice is
// kept in localStorage.
function setupTheme() {
  const button = document.getElementById('theme');
  const order = ['auto', 'light', 'dark'];
  const apply = (t) => {
    if (t === 'auto') delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = t;
    button.textContent = `Theme: ${t}`;
    button.setAttribute('aria-label', `Theme: ${t}. Change the theme`);
  };
  let theme = localStorage.getItem('mercury.theme') || 'auto';
  if (!order.includes(theme)) theme = 'auto';
  apply(theme);
  button.addEventListener('click', () => {
    theme = order[(order.indexOf(theme) + 1) % order.length];
    localStorage.setItem('mercury.theme', theme);
    apply(theme);
  });
}

// The state of the page's live connections (mercury.js's onState), shown
// once a view has opened one: a lost broker shows as "reconnecting".
function setupConnectionState() {
  const el = document.getElementById('conn');
  const labels = {connecting: 'Connecting…', open: 'Live', reconnecting: 'Reconnecting…'};
  window.addEventListener('mercury:state', (ev) => {
    const state = ev.detail;
    el.dataset.state = state;
    el.textContent = labels[state] || '';
    el.title = state === 'reconnecting'
      ? 'The connection to the broker was lost: reconnecting, to resume where each view was.'
      : 'The live views\' connections to the broker (mercury.js).';
    el.hidden = !labels[state];
  });
}

function setupSkipLink() {
  // The skip link focuses the content without touching the route.
  document.querySelector('.skip').addEventListener('click', (ev) => {
    ev.preventDefault();
    document.getElementById('main').focus();
  });
}

setupTheme();
setupLogin();
setupConnectionState();
setupSkipLink();
window.addEventListener('hashchange', () => route(true));
route(false);
