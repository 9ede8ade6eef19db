// The broker's HTTP API and WebSocket URLs, with the login token when
// there is one (kept in sessionStorage: gone when the tab closes).

const TOKEN_KEY = 'mercury.token';

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
  window.dispatchEvent(new CustomEvent('mercury:token'));
}

// request calls the broker and returns {status, ok, json, text}: never
// throws for an HTTP error (the caller shows it), only when the broker
// cannot be reached. A 401 also tells the page to ask for a token.
export async function request(method, path, {body, contentType, headers = {}} = {}) {
  const h = {Accept: 'application/json', ...headers};
  const t = token();
  if (t) h.Authorization = 'Bearer ' + t;
  if (contentType) h['Content-Type'] = contentType;
  let resp;
  try {
    resp = await fetch(path, {method, headers: h, body, cache: 'no-store'});
  } catch (err) {
    throw new Error(`the broker did not answer ${method} ${path}: ${err.message}`);
  }
  const text = await resp.text();
  let json;
  const ct = resp.headers.get('Content-Type') || '';
  if (text && /json/.test(ct)) {
    try { json = JSON.parse(text); } catch { /* shown as text */ }
  }
  const res = {status: resp.status, statusText: resp.statusText, ok: resp.ok, json, text};
  if (resp.status === 401) {
    window.dispatchEvent(new CustomEvent('mercury:unauthorized', {detail: res}));
  }
  return res;
}

export const get = (path) => request('GET', path);

// topicPath turns a topic into the path after /sub, /pub …: each segment
// escaped, so a segment holding %2E stays %2E once the server decodes it.
export function topicPath(topic) {
  return '/' + topic.split('/').filter((s) => s !== '').map(encodeURIComponent).join('/');
}

// normalizeTopic gives a topic its leading slash and drops a trailing one.
export function normalizeTopic(raw) {
  let t = raw.trim();
  if (!t.startsWith('/')) t = '/' + t;
  if (t.length > 1) t = t.replace(/\/+$/, '');
  return t;
}

// wsURL is the WebSocket URL of pattern and topic on this broker, with
// the token as ?token= when logged in.
export function wsURL(pattern, topic, params = {}) {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const t = token();
  if (t) q.set('token', t);
  const qs = q.toString();
  return `${proto}//${location.host}/${pattern}${topicPath(topic)}${qs ? '?' + qs : ''}`;
}
