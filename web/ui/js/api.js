// The broker's admin API, with the login token when there is one (kept
// in sessionStorage: gone when the tab closes). What is live (messages,
// presence, requests, publishing) goes through mercury.js: see live.js.

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

// normalizeTopic gives a topic its leading slash and drops a trailing one.
export function normalizeTopic(raw) {
  let t = raw.trim();
  if (!t.startsWith('/')) t = '/' + t;
  if (t.length > 1) t = t.replace(/\/+$/, '');
  return t;
}
