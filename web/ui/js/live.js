// The page's one client of the broker: mercury.js, imported as any
// application imports it, from the broker that serves this page. Every
// live view (inspector, audit, agents, the publish form) goes through it,
// so they reconnect, resume from the last message seen and carry the
// login token the same way.
import {connect} from '/mercury.js';
import {token} from './api.js';

function askLogin(err) {
  window.dispatchEvent(new CustomEvent('mercury:unauthorized', {
    detail: {status: 401, json: {error: {code: err.code, message: err.detail?.message || err.message}}}}));
}

// unauthorized shows the login form for a MercuryError with status 401,
// as a 401 from the admin API does. A try that set out before a login
// may come back with 401 after it: the form shows only if the broker
// still says 401 to the token the page holds now.
let checking = null;
export function unauthorized(err) {
  if (!err || err.status !== 401 || checking) return;
  checking = mercury.presence(err.topic || '/').then(() => null, (e) => e).then((e) => {
    checking = null;
    if (e && e.status === 401) askLogin(e);
  });
}

export const mercury = connect(location.origin, {
  // The token the reader logged in with, read afresh at each connection.
  getToken: () => token(),
  // A reader waits for the broker: a restart is seen back within 5 s.
  backoff: {initial: 250, max: 5000},
  onState: (state) => window.dispatchEvent(new CustomEvent('mercury:state', {detail: state})),
  onError: unauthorized,
});

// A login or a logout: the client takes the new token now.
window.addEventListener('mercury:token', () => { mercury.refreshToken(); });

// reportTo wraps a handle's onError: a 401 asks for a login, and the view
// hears every error.
export function reportTo(onError) {
  return (err) => {
    unauthorized(err);
    onError(err);
  };
}

// errorMessage says what a MercuryError or another error means.
export function errorMessage(err) {
  if (!err) return '';
  const d = err.detail || {};
  if (err.name === 'MercuryError') return `${d.message || err.message} (${err.code}${err.status ? ', ' + err.status : ''})`;
  return err.message || String(err);
}
