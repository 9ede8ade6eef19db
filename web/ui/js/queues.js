// Queues: depth, in flight and dead letters of every queue; per queue the
// dead letters with peek, requeue (one or all), pop and purge.
import {h, replace, number, formatTime, errorText, keepFocus, announce, pretty} from './dom.js';
import {get, request} from './api.js';
import {payloadText} from './payload.js';

export function create() {
  const heading = h('h1', {tabindex: '-1'}, 'Queues');
  const refresh = h('button', {type: 'button', id: 'queues-refresh'}, 'Refresh');
  const listBox = h('div', {id: 'queues-list'});
  const deadBox = h('section', {class: 'panel', id: 'queues-dead', hidden: true, 'aria-labelledby': 'dead-h'});
  const el = h('section', {class: 'view', id: 'view-queues'},
    heading,
    h('section', {class: 'panel', 'aria-labelledby': 'queues-h'},
      h('div', {class: 'row'}, h('h2', {id: 'queues-h'}, 'Work queues'), refresh),
      h('p', {class: 'muted'}, 'Refreshed every 2 seconds while shown.'),
      listBox),
    deadBox);

  let timer = null;
  let last = '';
  let selected = null; // the queue whose dead letters are shown
  let lastDead = '';
  let peeked = new Map(); // id → dead letter shown in full

  async function load() {
    const res = await get('/api/queues').catch((err) => ({status: 0, text: err.message}));
    if (!res.ok || !Array.isArray(res.json)) {
      last = '';
      replace(listBox, h('p', {class: 'notice bad'}, `GET /api/queues failed: ${errorText(res)}`));
      return;
    }
    const text = JSON.stringify(res.json);
    if (text !== last) {
      last = text;
      renderQueues(res.json);
    }
    if (selected) await loadDead();
  }

  function renderQueues(list) {
    if (!list.length) {
      replace(listBox, h('p', {class: 'muted'}, 'No queue: a queue exists once something is pushed to it or pulled from it.'));
      return;
    }
    keepFocus(listBox, () => replace(listBox, h('div', {class: 'table-wrap'}, h('table', {},
      h('thead', {}, h('tr', {},
        h('th', {scope: 'col'}, 'Queue'), h('th', {scope: 'col', class: 'num'}, 'Waiting'),
        h('th', {scope: 'col', class: 'num'}, 'In flight'), h('th', {scope: 'col', class: 'num'}, 'Dead'),
        h('th', {scope: 'col', class: 'num'}, 'Pullers'), h('th', {scope: 'col'}, 'Kind'),
        h('th', {scope: 'col'}, 'Last used'), h('th', {scope: 'col'}, 'TTL'),
        h('th', {scope: 'col'}, h('span', {class: 'offscreen'}, 'Actions')))),
      h('tbody', {}, list.map((q) => h('tr', {dataset: {queue: q.topic}},
        h('th', {scope: 'row'}, h('code', {}, q.topic)),
        h('td', {class: 'num'}, number(q.waiting)),
        h('td', {class: 'num'}, number(q.in_flight)),
        h('td', {class: 'num' + (q.dead ? ' bad-text' : '')}, number(q.dead)),
        h('td', {class: 'num'}, number(q.pullers)),
        h('td', {}, [q.durable ? 'durable' : 'in memory', q.exclusive ? ', exclusive' : ''].join('')),
        h('td', {}, formatTime(q.last_used)),
        h('td', {}, q.ttl || ''),
        h('td', {}, h('button', {type: 'button', class: 'small', 'data-focus-key': 'dead:' + q.topic,
          'aria-pressed': String(selected === q.topic),
          onclick: () => select(q.topic)}, `Dead letters (${number(q.dead)})`)))))))));
  }

  function select(topic) {
    selected = topic;
    lastDead = '';
    peeked = new Map();
    last = ''; // redraw the pressed state
    load().then(() => {
      const h2 = deadBox.querySelector('h2');
      if (h2) h2.focus();
    });
  }

  async function loadDead() {
    const topic = selected;
    const res = await get(`/api/queues/dead?${new URLSearchParams({topic})}`).catch((err) => ({status: 0, text: err.message}));
    if (topic !== selected) return;
    deadBox.hidden = false;
    if (!res.ok || !Array.isArray(res.json)) {
      lastDead = '';
      replace(deadBox, h('h2', {id: 'dead-h', tabindex: '-1'}, `Dead letters of ${topic}`),
        h('p', {class: 'notice bad'}, `GET /api/queues/dead failed: ${errorText(res)}`));
      return;
    }
    const text = JSON.stringify(res.json) + [...peeked.keys()].join(',');
    if (text === lastDead) return;
    lastDead = text;
    renderDead(topic, res.json);
  }

  // act runs an action on the dead letters and says how it went.
  async function act(method, path, params, what) {
    const res = await request(method, `${path}?${new URLSearchParams(params)}`).catch((err) => ({status: 0, text: err.message}));
    const msg = res.ok ? `${what}: ${res.text.trim()}` : `${what} failed: ${errorText(res)}`;
    announce(msg);
    lastDead = '';
    last = '';
    await load();
    const out = deadBox.querySelector('#dead-result');
    if (out) {
      out.className = res.ok ? 'notice ok' : 'notice bad';
      out.textContent = msg;
      out.hidden = false;
    }
    return res;
  }

  async function peek(topic, id) {
    const res = await get(`/api/queues/dead?${new URLSearchParams({topic, id})}`);
    if (!res.ok) {
      announce(`Peek failed: ${errorText(res)}`);
      return;
    }
    peeked.set(id, res.json);
    lastDead = '';
    await loadDead();
    const pre = deadBox.querySelector(`[data-peek="${id}"]`);
    if (pre) pre.focus();
  }

  function renderDead(topic, list) {
    const head = h('h2', {id: 'dead-h', tabindex: '-1'}, `Dead letters of ${topic}`);
    const result = h('p', {id: 'dead-result', hidden: true, role: 'status'});
    const all = h('div', {class: 'actions'},
      h('button', {type: 'button', id: 'dead-requeue-all', disabled: !list.length,
        onclick: () => act('POST', '/api/queues/dead/requeue', {topic}, `Requeue all of ${topic}`)}, 'Requeue all'),
      h('button', {type: 'button', id: 'dead-pop', disabled: !list.length,
        onclick: async () => {
          const res = await act('POST', '/api/queues/dead/pop', {topic}, `Pop the oldest of ${topic}`);
          if (res.ok && res.json) {
            const out = deadBox.querySelector('#dead-result');
            if (out) out.after(h('pre', {class: 'popped', tabindex: '0', 'aria-label': 'The popped dead letter'}, pretty(res.json)));
          }
        }}, 'Pop oldest'),
      h('button', {type: 'button', id: 'dead-purge', class: 'danger', disabled: !list.length,
        onclick: () => {
          if (confirm(`Delete all ${list.length} dead letters of ${topic}? They cannot be brought back.`)) {
            act('DELETE', '/api/queues/dead', {topic}, `Purge ${topic}`);
          }
        }}, 'Purge'),
      h('button', {type: 'button', onclick: () => { selected = null; deadBox.hidden = true; last = ''; load(); }}, 'Close'));
    const body = list.length ? h('div', {class: 'table-wrap'}, h('table', {},
      h('thead', {}, h('tr', {},
        h('th', {scope: 'col'}, 'Id'), h('th', {scope: 'col', class: 'num'}, 'Attempts'),
        h('th', {scope: 'col'}, 'Died'), h('th', {scope: 'col'}, 'Last error'),
        h('th', {scope: 'col'}, h('span', {class: 'offscreen'}, 'Actions')))),
      h('tbody', {}, list.map((d) => {
        const full = peeked.get(String(d.id));
        const rows = [h('tr', {dataset: {dead: String(d.id)}},
          h('td', {class: 'mono'}, d.id),
          h('td', {class: 'num'}, number(d.attempts)),
          h('td', {}, formatTime(d.died)),
          h('td', {}, d.last_error || h('span', {class: 'muted'}, '(none given)')),
          h('td', {}, h('div', {class: 'row'},
            h('button', {type: 'button', class: 'small', 'data-focus-key': 'peek:' + d.id, 'aria-expanded': String(!!full),
              'aria-label': `Peek at dead letter ${d.id}`,
              onclick: () => { if (full) { peeked.delete(String(d.id)); lastDead = ''; loadDead(); } else peek(topic, String(d.id)); }},
            full ? 'Hide' : 'Peek'),
            h('button', {type: 'button', class: 'small', 'data-focus-key': 'requeue:' + d.id,
              'aria-label': `Requeue dead letter ${d.id}`,
              onclick: () => act('POST', '/api/queues/dead/requeue', {topic, id: d.id}, `Requeue ${d.id}`)}, 'Requeue'))))];
        if (full) {
          const env = full.message || {};
          rows.push(h('tr', {class: 'peek'}, h('td', {colspan: '5'},
            h('dl', {class: 'kv'},
              h('dt', {}, 'Reason'), h('dd', {}, full.last_error || '(none given)'),
              h('dt', {}, 'Topic'), h('dd', {}, h('code', {}, env.topic || '')),
              h('dt', {}, 'Sequence'), h('dd', {}, String(env.seq ?? '')),
              h('dt', {}, 'Published'), h('dd', {}, formatTime(env.time))),
            h('pre', {tabindex: '0', 'data-peek': String(d.id), 'aria-label': `Payload of dead letter ${d.id}`},
              env.data !== undefined ? payloadText(env).text : pretty(full)))));
        }
        return rows;
      })))) : h('p', {class: 'muted'}, 'No dead letter in this queue.');
    keepFocus(deadBox, () => replace(deadBox, head, all, result, body));
  }

  refresh.addEventListener('click', () => { last = ''; lastDead = ''; load(); });

  return {
    el,
    show() {
      load();
      clearInterval(timer);
      timer = setInterval(() => { if (!document.hidden) load(); }, 2000);
    },
    hide() {
      clearInterval(timer);
      timer = null;
    },
  };
}
