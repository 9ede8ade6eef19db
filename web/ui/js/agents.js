// Agents: who is subscribed under a topic, live (mercury.js's presence,
// then the join and leave events of a subscription with onPresence), and
// a form that sends a request (mercury.js's request) and shows the
// answer, or every answer.
import {h, replace, field, announce, pretty, formatTime} from './dom.js';
import {normalizeTopic} from './api.js';
import {mercury, reportTo, errorMessage} from './live.js';

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

  let watcher = null;
  let watched = '';
  const present = new Map();

  function render() {
    const list = [...present.values()].sort((a, b) => a.since < b.since ? -1 : a.since > b.since ? 1 : 0);
    replace(rows, list.map((p) => h('tr', {},
      h('td', {}, h('code', {}, p.topic)), h('td', {}, p.user ?? '(anonymous)'),
      h('td', {}, formatTime(p.since)), h('td', {}, p.node || '—'))));
    count.textContent = `${list.length} connected`;
  }

  function say(text, className = 'muted') {
    status.className = className;
    status.textContent = text;
  }

  function stop() {
    if (watcher) {
      const w = watcher;
      watcher = null;
      w.close();
    }
  }

  function watch(t) {
    stop();
    watched = t;
    present.clear();
    render();
    say(`Connecting to ${t}…`);
    const w = mercury.subscribe(t, {
      onPresence: (p) => {
        if (watcher !== w) return;
        if (p.event === 'join') present.set(keyOf(p), p);
        else present.delete(keyOf(p));
        render();
      },
      onState: (state) => {
        if (watcher !== w) return;
        if (state === 'open') list(w, t);
        else if (state === 'reconnecting') say(`Reconnecting to ${t}…`, 'status-bad');
      },
      onError: reportTo((err) => {
        if (watcher === w) say(errorMessage(err), 'notice bad');
      }),
    });
    watcher = w;
  }

  // list takes the list once the watch is open, at first and after each
  // reconnection: no join is missed in between (one seen twice is the
  // same row), and whoever left while the watch was away is gone.
  async function list(w, t) {
    present.clear();
    let entries;
    try {
      entries = await mercury.presence(t);
    } catch (err) {
      if (watcher !== w) return;
      say(errorMessage(err), 'notice bad');
      if (err.name === 'MercuryError') stop(); // refused: watching cannot help
      return;
    }
    if (watcher !== w) return;
    for (const p of entries) present.set(keyOf(p), p);
    render();
    say(`Watching ${t}.`);
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
    const every = all.checked;
    send.disabled = true;
    replace(result, h('p', {class: 'muted'}, `Asking ${t}…`));
    try {
      // The text as typed: the broker reads JSON as JSON, anything else as text.
      const answer = await mercury.request(t, data.value, {timeout: timeout.value.trim() || '10s', all: every});
      const summary = every ? `${answer.length} answer(s).` : 'Answered.';
      replace(result,
        h('p', {id: 'agents-answer-status', class: 'notice ok'}, summary),
        h('pre', {id: 'agents-answer'}, answer instanceof Uint8Array ? `binary, ${answer.length} bytes` : pretty(answer)));
      announce(summary);
    } catch (err) {
      const summary = err.name === 'MercuryError' ? `${err.status}: ${err.code}: ${err.detail.message || err.message}` : err.message;
      replace(result, h('p', {id: 'agents-answer-status', class: 'notice bad', dataset: {status: String(err.status ?? '')}}, summary));
      announce(summary);
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
