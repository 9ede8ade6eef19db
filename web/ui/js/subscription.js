// One WebSocket subscription in envelope mode (subprotocol mercury.v1):
// every frame is {"topic","seq","time","data"[,"encoding"]}, a gap notice
// {"gap":{…}} or an error {"error":{…}}.
import {wsURL} from './api.js';

export class Subscription extends EventTarget {
  constructor(topic, {since} = {}) {
    super();
    this.topic = topic;
    this.since = since;
    this.state = 'connecting';
    this.closeInfo = '';
    this.open();
  }

  open() {
    const params = {};
    if (this.since !== undefined && this.since !== '') params.since = this.since;
    this.ws = new WebSocket(wsURL('sub', this.topic, params), ['mercury.v1']);
    this.ws.addEventListener('open', () => this.setState('open', ''));
    this.ws.addEventListener('message', (ev) => this.frame(ev.data));
    this.ws.addEventListener('close', (ev) => {
      // A refusal at the handshake (no credential or right, a bad topic)
      // reaches a browser only as 1006.
      const reason = ev.code === 1006
        ? 'the connection was refused or lost (a credential or right missing, or a bad topic, is refused at the handshake)'
        : (ev.reason || 'no reason given');
      this.setState('closed', this.closedByUs ? 'closed' : `closed: ${ev.code} ${reason}`);
    });
  }

  setState(state, info) {
    this.state = state;
    this.closeInfo = info;
    this.dispatchEvent(new Event('state'));
  }

  frame(data) {
    let item;
    if (typeof data !== 'string') {
      item = {kind: 'error', text: 'a binary frame, which envelope mode does not send'};
    } else {
      try {
        const f = JSON.parse(data);
        if (f && f.gap) item = {kind: 'gap', gap: f.gap};
        else if (f && f.error) item = {kind: 'error', error: f.error, text: f.error.message};
        else item = {kind: 'message', envelope: f};
      } catch (err) {
        item = {kind: 'error', text: `a frame that is not JSON: ${data.slice(0, 200)}`};
      }
    }
    this.dispatchEvent(new CustomEvent('item', {detail: item}));
  }

  close() {
    this.closedByUs = true;
    this.ws.close(1000, 'closed by the dashboard');
  }
}

// payloadText shows an envelope's payload: JSON indented, text as it is,
// binary as base64 with its size.
export function payloadText(env) {
  if (env.encoding === 'text') return {text: env.data, json: false};
  if (env.encoding === 'base64') {
    const n = Math.floor((env.data.length * 3) / 4) - (env.data.endsWith('==') ? 2 : env.data.endsWith('=') ? 1 : 0);
    return {text: `binary, ${n} bytes (base64):\n${env.data}`, json: false};
  }
  return {text: JSON.stringify(env.data, null, 2), json: true};
}
