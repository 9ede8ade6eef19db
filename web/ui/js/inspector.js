// Topic inspector: subscribe to any topic with mercury.js (optional
// replay; after a lost connection it resumes from the last message
// shown), several at once, one shown at a time; pause, filter, copy,
// clear.
import {h, replace, field, formatTime, copyText, announce, uid} from './dom.js';
import {normalizeTopic} from './api.js';
import {mercury, reportTo, errorMessage} from './live.js';
import {payloadText} from './payload.js';

const KEEP = 500; // messages kept per subscription; older ones are dropped

export function create() {
  const heading = h('h1', {tabindex: '-1'}, 'Topic inspector');
  const topicInput = h('input', {id: 'inspect-topic', name: 'topic', placeholder: '/livesys/42', required: true, spellcheck: 'false', autocomplete: 'off'});
  const sinceInput = h('input', {id: 'inspect-since', name: 'since', inputmode: 'numeric', pattern: '[0-9]*', size: 10, autocomplete: 'off'});
  const form = h('form', {class: 'row', id: 'inspect-form'},
    h('div', {class: 'field grow'}, field('Topic (and every topic below it)', topicInput)),
    field('Replay after sequence', sinceInput, 'optional: 0 for all history kept'),
    h('button', {type: 'submit', class: 'primary'}, 'Subscribe'));
  const tabs = h('ul', {class: 'tabs', 'aria-label': 'Subscriptions'});
  const panel = h('div', {id: 'inspect-panel'});
  const el = h('section', {class: 'view', id: 'view-inspect'},
    heading, h('div', {class: 'panel'}, form, tabs), panel);

  const subs = []; // {topic, since, sub, state, error, items, waiting, paused, filter, id, list, counter}
  let active = null;

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const since = sinceInput.value.trim();
    if (since && !/^\d+$/.test(since)) {
      sinceInput.setAttribute('aria-invalid', 'true');
      announce('The sequence number must be a whole number.');
      sinceInput.focus();
      return;
    }
    sinceInput.removeAttribute('aria-invalid');
    subscribe(normalizeTopic(topicInput.value), since);
  });

  function subscribe(topic, since) {
    const s = {topic, since, state: 'connecting', error: '', items: [], waiting: [], paused: false, filter: '', id: uid('sub'), dropped: 0};
    const receive = (item) => {
      if (s.paused) {
        s.waiting.push(item);
      } else {
        add(s, item);
      }
      renderCounts(s);
    };
    s.sub = mercury.subscribe(topic, {
      since: since === '' ? undefined : Number(since),
      onMessage: (message) => receive({kind: 'message', message}),
      onGap: (gap) => receive({kind: 'gap', gap}),
      onError: reportTo((err) => {
        s.error = errorMessage(err);
        // An error frame on a live subscription goes in its list; a
        // refusal while connecting says why in the status line.
        if (s.state === 'open') receive({kind: 'error', text: s.error});
        else if (active === s) renderStatus(s);
      }),
      onState: (state) => {
        s.state = state;
        if (state === 'open') s.error = '';
        renderTabs();
        if (active === s) renderStatus(s);
      },
    });
    subs.push(s);
    select(s);
  }

  function add(s, item) {
    s.items.push(item);
    if (s.items.length > KEEP) {
      const old = s.items.shift();
      s.dropped++;
      if (active === s && matches(old, s.filter) && s.list.firstChild) s.list.firstChild.remove();
    }
    if (active === s && matches(item, s.filter)) s.list.append(renderItem(item));
  }

  function itemText(item) {
    if (item.kind === 'message') return payloadText(item.message).text;
    if (item.kind === 'gap') return JSON.stringify(item.gap);
    return item.text || '';
  }

  function matches(item, filter) {
    if (!filter) return true;
    const f = filter.toLowerCase();
    const topic = item.message ? item.message.topic : '';
    return itemText(item).toLowerCase().includes(f) || topic.toLowerCase().includes(f);
  }

  function renderItem(item) {
    if (item.kind === 'gap') {
      if (item.gap.reset) {
        return h('li', {class: 'msg-gap muted'},
          'The broker started afresh (a restart without its data): what follows is numbered anew.');
      }
      return h('li', {class: 'msg-gap muted'},
        `Not kept any more: sequence ${item.gap.from} to ${item.gap.to} (history limits, a restart, or a topic without history).`);
    }
    if (item.kind === 'error') {
      return h('li', {class: 'msg-error'}, `Error: ${item.text}`);
    }
    const env = item.message;
    const {text, json} = payloadText(env);
    const copy = h('button', {type: 'button', class: 'small', 'aria-label': `Copy message ${env.seq}`}, 'Copy');
    copy.addEventListener('click', async () => {
      try {
        await copyText(text);
        copy.textContent = 'Copied';
        announce(`Message ${env.seq} copied.`);
        setTimeout(() => { copy.textContent = 'Copy'; }, 1500);
      } catch (err) {
        announce(`Copy failed: ${err.message}`);
      }
    });
    return h('li', {class: 'msg', dataset: {seq: String(env.seq)}},
      h('div', {class: 'msg-head'},
        h('span', {class: 'topic'}, env.topic),
        h('span', {}, `seq ${env.seq}`),
        h('time', {datetime: env.time}, formatTime(env.time)),
        h('span', {}, json ? 'JSON' : env.encoding === 'base64' ? 'binary' : 'text'),
        h('span', {class: 'spacer'}),
        copy),
      h('pre', {class: json ? 'json' : 'text'}, text));
  }

  function renderTabs() {
    replace(tabs, subs.map((s) => {
      const state = s.state === 'open' ? '' : ` (${s.state})`;
      return h('li', {dataset: {state: s.state}},
        h('button', {type: 'button', class: 'tab', 'aria-pressed': String(s === active), onclick: () => select(s)},
          s.topic + state),
        h('button', {type: 'button', 'aria-label': `Unsubscribe from ${s.topic}`, title: 'Unsubscribe', onclick: () => remove(s)}, '×'));
    }));
  }

  function renderStatus(s) {
    const st = s.status;
    if (!st) return;
    st.dataset.state = s.state;
    const since = s.since ? `, replaying after sequence ${s.since}` : '';
    const why = s.error ? ` ${s.error}.` : '';
    if (s.state === 'open') {
      st.className = 'status-ok';
      st.textContent = `Subscribed to ${s.topic}${since}.`;
    } else if (s.state === 'connecting') {
      st.className = 'muted';
      st.textContent = `Connecting to ${s.topic}…${why}`;
    } else if (s.state === 'reconnecting') {
      const pos = s.sub.position; // "EPOCH:SEQ": the sequence number says enough
      const from = pos ? `, to resume after sequence ${pos.slice(pos.lastIndexOf(':') + 1)}` : '';
      st.className = 'status-bad';
      st.textContent = `Reconnecting to ${s.topic}${from}…${why}`;
    } else {
      st.className = 'status-bad';
      st.textContent = `Subscription to ${s.topic} closed.${why}`;
    }
  }

  function renderCounts(s) {
    if (active !== s || !s.counter) return;
    const shown = s.list.children.length;
    const parts = [`${s.items.length} received`];
    if (s.filter) parts.push(`${shown} match the filter`);
    if (s.waiting.length) parts.push(`${s.waiting.length} waiting while paused`);
    if (s.dropped) parts.push(`${s.dropped} older dropped (the last ${KEEP} are kept)`);
    s.counter.textContent = parts.join(' · ');
  }

  function select(s) {
    active = s;
    renderTabs();
    if (!s) {
      replace(panel);
      return;
    }
    const pause = h('button', {type: 'button', id: 'inspect-pause', 'aria-pressed': String(s.paused)}, s.paused ? 'Resume' : 'Pause');
    pause.addEventListener('click', () => {
      s.paused = !s.paused;
      pause.textContent = s.paused ? 'Resume' : 'Pause';
      pause.setAttribute('aria-pressed', String(s.paused));
      if (!s.paused) {
        for (const item of s.waiting.splice(0)) add(s, item);
      }
      renderCounts(s);
      announce(s.paused ? 'Paused: new messages wait.' : 'Resumed.');
    });
    const filter = h('input', {type: 'search', id: 'inspect-filter', value: s.filter, autocomplete: 'off'});
    filter.addEventListener('input', () => {
      s.filter = filter.value;
      renderList(s);
    });
    const clear = h('button', {type: 'button', id: 'inspect-clear'}, 'Clear');
    clear.addEventListener('click', () => {
      s.items = [];
      s.waiting = [];
      s.dropped = 0;
      renderList(s);
      announce('Messages cleared.');
    });
    s.status = h('p', {role: 'status'});
    s.counter = h('p', {class: 'muted', id: 'inspect-count'});
    s.list = h('ol', {class: 'messages', id: 'inspect-messages', 'aria-label': `Messages on ${s.topic}`});
    replace(panel, h('section', {class: 'panel', 'aria-label': `Subscription to ${s.topic}`},
      h('div', {class: 'row'}, pause, h('div', {class: 'field grow'}, field('Filter (text in the topic or the message)', filter)), clear),
      s.status, s.counter, s.list));
    renderStatus(s);
    renderList(s);
  }

  function renderList(s) {
    replace(s.list, s.items.filter((i) => matches(i, s.filter)).map(renderItem));
    renderCounts(s);
  }

  function remove(s) {
    s.sub.close();
    const i = subs.indexOf(s);
    subs.splice(i, 1);
    if (active === s) select(subs[Math.min(i, subs.length - 1)] || null);
    else renderTabs();
    topicInput.focus();
  }

  return {
    el,
    show(params) {
      const topic = params.get('topic');
      if (topic) {
        topicInput.value = topic;
        const existing = subs.find((s) => s.topic === normalizeTopic(topic) && s.state !== 'closed');
        if (existing) select(existing);
        else subscribe(normalizeTopic(topic), params.get('since') || '');
      }
    },
    hide() {},
  };
}
