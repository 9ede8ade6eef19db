// Agents: who is subscribed under a topic, live (GET /presence, then the
// join and leave events of a ?presence=1 subscription), and a form that
// sends a request (POST /req) and shows the answer, or every answer.
import {h, replace, field, errorText, announce, pretty, formatTime} from './dom.js';
import {request, topicPath, normalizeTopic, wsURL} from './api.js';

const keyOf = (p) => `${p.node || ''}\u0000${p.topic}\u0000${p.user ?? ''}\u0000${p.since}`;

export function create() {
  const heading = h('h1', {tabindex: '-1'}, 'Agents');
  const topic = h('input', {id: 'agents-topic', name: 'topic', required: true, placeholder: '/livesys', spellcheck: 'false', autocomplete: 'off'});
  const watchForm = h('form', {id: 'agents-form'},
    h('div', {class: 'row'}, h('div', {class: 'field grow'}, field('Topic', topic, 'Subscriptions at or below it, on every broker.')),
      h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'primary'}, 'Watch'))));
  const status = h('p', {id: 'agents-status', role: 'status', class: 'muted'}, 'Enter a topic to see who is connected under it.');
  const count = h('p', {id: 'agents-count', class: 'muted'});
  const rows = h('tbody', {id: 'agents-rows'});
  const table = h('table', {class: 'data'},
    h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'Topic'), h('th', {scope: 'col'}, 'User'),
      h('th', {scope: 'col'}, 'Since'), h('th', {scope: 'col'}, 'Broker'))),
    rows);

  const data = h('textarea', {id: 'agents-data', name: 'data', spellcheck: 'false', rows: 4});
  const timeout = h('input', {id: 'agents-timeout', name: 'timeout', value: '5s', size: 6});
  const all = h('input', {id: 'agents-all', name: 'all', type: 'checkbox'});
  const send = h('button', {type: 'submit', class: 'primary', id: 'agents-send'}, 'Send request');
  const reqForm = h('form', {id: 'agents-request'},
    h('div', {class: 'field'}, field('Request', data, 'Sent to every agent at or below the topic; JSON or text.')),
    h('div', {class: 'row'}, field('Timeout', timeout), h('div', {class: 'field'}, h('label', {}, all, ' Every answer'))),
    h('div', {class: 'actions'}, send));
  const result = h('div', {id: 'agents-result', 'aria-live': 'polite'});

  const el = h('section', {class: 'view', id: 'view-agents'},
    heading, h('div', {class: 'panel'}, watchForm, status, count, table),
    h('section', {class: 'panel', 'aria-labelledby': 'agents-request-h'}, h('h2', {id: 'agents-request-h'}, 'Ask them'), reqForm, result));

  let ws = null;
  let watched = '';
  const present = new Map();

  function render() {
    const list = [...present.values()].sort((a, b) => a.since < b.since ? -1 : a.since > b.since ? 1 : 0);
    replace(rows, list.map((p) => h('tr', {},
      h('td', {}, h('code', {}, p.topic)), h('td', {}, p.user ?? '(anonymous)'),
      h('td', {}, formatTime(p.since)), h('td', {}, p.node || '—'))));
    count.textContent = `${list.length} connected`;
  }

  function stop() {
    if (ws) {
      ws.onclose = null;
      ws.close();
      ws = null;
    }
  }

  async function watch(t) {
    stop();
    watched = t;
    present.clear();
    // The watch first, then the list: no join is missed in between (one
    // seen twice is the same row).
    const sock = new WebSocket(wsURL('sub', t, {envelope: 1, presence: 1}));
    ws = sock;
    sock.onmessage = (ev) => {
      let f;
      try { f = JSON.parse(ev.data); } catch { return; }
      if (!f.presence) return;
      const p = f.presence;
      if (p.event === 'join') present.set(keyOf(p), p);
      else present.delete(keyOf(p));
      render();
    };
    sock.onclose = () => {
      if (ws === sock) status.textContent = `Disconnected from ${t}.`;
    };
    await new Promise((resolve) => { sock.onopen = resolve; sock.onerror = resolve; });
    const res = await request('GET', `/presence${topicPath(t)}`).catch((e) => e);
    if (res instanceof Error || !res.ok) {
      status.className = 'notice bad';
      status.textContent = errorText(res);
      stop();
      return;
    }
    for (const p of res.json || []) present.set(keyOf(p), p);
    render();
    status.className = 'muted';
    status.textContent = `Watching ${t}.`;
  }

  watchForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (topic.value.trim()) watch(normalizeTopic(topic.value));
  });

  reqForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const t = normalizeTopic(topic.value || watched);
    if (t === '/') {
      replace(result, h('p', {class: 'notice bad', role: 'alert'}, 'Which topic? Enter one above.'));
      return;
    }
    const q = new URLSearchParams({timeout: timeout.value.trim() || '10s'});
    if (all.checked) q.set('all', '1');
    send.disabled = true;
    replace(result, h('p', {class: 'muted'}, `Asking ${t}…`));
    let isJSON = true;
    try { JSON.parse(data.value); } catch { isJSON = false; }
    try {
      const res = await request('POST', `/req${topicPath(t)}?${q}`, {
        body: data.value, contentType: isJSON ? 'application/json' : 'text/plain; charset=utf-8'});
      const err = res.json && res.json.error;
      const summary = res.ok
        ? (all.checked ? `${(res.json || []).length} answer(s).` : 'Answered.')
        : `${res.status}: ${err ? err.code + ': ' + err.message : res.text}`;
      replace(result,
        h('p', {id: 'agents-answer-status', class: res.ok ? 'notice ok' : 'notice bad', dataset: {status: String(res.status)}}, summary),
        res.ok ? h('pre', {id: 'agents-answer'}, res.json !== undefined ? pretty(res.json) : res.text) : null);
      announce(summary);
    } catch (e) {
      replace(result, h('p', {class: 'notice bad'}, e.message));
    } finally {
      send.disabled = false;
    }
  });

  return {
    el,
    show(params) {
      if (params.get('topic')) {
        topic.value = params.get('topic');
        if (normalizeTopic(topic.value) !== watched) watch(normalizeTopic(topic.value));
      }
    },
    hide() {},
  };
}
