// Overview: counters and the live chart from GET /api/overview, the
// busiest topics from GET /api/topics, the connections from
// GET /api/connections (with a way to close one). Polled every second
// while the view is shown.
import {h, replace, number, formatTime, errorText, keepFocus, announce} from './dom.js';
import {get, request} from './api.js';
import {RateChart} from './chart.js';

// unavailable says why a part of the overview cannot be shown.
function unavailable(path, res) {
  if (res.status === 404) {
    return h('p', {class: 'notice'}, `Not available: this broker does not serve GET ${path} (404).`);
  }
  if (res.status === 401) return h('p', {class: 'notice'}, 'Log in to see this.');
  return h('p', {class: 'notice bad'}, `GET ${path} failed: ${errorText(res)}`);
}

export function create({navigate}) {
  const heading = h('h1', {tabindex: '-1'}, 'Overview');
  const updated = h('p', {class: 'muted', id: 'overview-updated'});
  const statsBox = h('div', {id: 'overview-stats'});
  const chart = new RateChart(60);
  const chartBox = h('section', {class: 'panel chart', 'aria-labelledby': 'chart-h'},
    h('h2', {id: 'chart-h'}, 'Messages per second'),
    chart.el,
    h('ul', {class: 'legend'}, h('li', {class: 'in'}, 'in (published)'), h('li', {class: 'out'}, 'out (delivered)')));
  chartBox.hidden = true;
  const topicsBox = h('div', {id: 'overview-topics'});
  const connsBox = h('div', {id: 'overview-connections'});
  const el = h('section', {class: 'view', id: 'view-overview'},
    heading, updated, statsBox, chartBox,
    h('div', {class: 'grid'},
      h('section', {class: 'panel', 'aria-labelledby': 'topics-h'}, h('h2', {id: 'topics-h'}, 'Busiest topics'), topicsBox),
      h('section', {class: 'panel', 'aria-labelledby': 'conns-h'}, h('h2', {id: 'conns-h'}, 'Connections'), connsBox)));

  let timer = null;
  let busy = false;
  let lastConns = '';
  let lastTopics = '';

  function renderStats(o) {
    const refusals = o.refusals || {};
    const totalRefusals = Object.values(refusals).reduce((a, b) => a + (Number(b) || 0), 0);
    const byPattern = Object.entries((o.connections && o.connections.by_pattern) || {})
      .map(([p, n]) => `${p} ${n}`).join(', ');
    const stat = (label, value, small) => h('div', {}, h('dt', {}, label), h('dd', {}, value, small ? h('small', {}, small) : null));
    replace(statsBox, h('dl', {class: 'stats'},
      stat('Connections', number(o.connections && o.connections.total), byPattern),
      stat('Subscriptions', number(o.subscriptions)),
      stat('Topics', number(o.topics)),
      stat('In per second', number(o.in_per_second, 1), `${number(o.messages_in)} in all`),
      stat('Out per second', number(o.out_per_second, 1), `${number(o.messages_out)} in all`),
      stat('Refusals', number(totalRefusals),
        Object.entries(refusals).map(([reason, n]) => `${reason} ${number(n)}`).join(', ')),
      stat('Slow consumers closed', number(o.slow_consumer_closes))));
    updated.textContent = `Mercury ${o.version || ''}, started ${formatTime(o.started)}. Updated every second.`;
  }

  function renderTopics(list) {
    const text = JSON.stringify(list);
    if (text === lastTopics) return;
    lastTopics = text;
    const top = [...list].sort((a, b) => (b.in_per_second || 0) - (a.in_per_second || 0)).slice(0, 10);
    if (!top.length) {
      replace(topicsBox, h('p', {class: 'muted'}, 'No topic has subscribers, history or recent traffic.'));
      return;
    }
    keepFocus(topicsBox, () => replace(topicsBox, h('div', {class: 'table-wrap'}, h('table', {},
      h('thead', {}, h('tr', {},
        h('th', {scope: 'col'}, 'Topic'), h('th', {scope: 'col', class: 'num'}, 'In/s'),
        h('th', {scope: 'col', class: 'num'}, 'Subscribers'), h('th', {scope: 'col', class: 'num'}, 'Messages'),
        h('th', {scope: 'col', class: 'num'}, 'Last seq'))),
      h('tbody', {}, top.map((t) => h('tr', {},
        h('td', {}, h('a', {href: `#/inspect?${new URLSearchParams({topic: t.topic})}`, 'data-focus-key': 'topic:' + t.topic,
          title: 'Open in the inspector'}, h('code', {}, t.topic))),
        h('td', {class: 'num'}, number(t.in_per_second, 1)),
        h('td', {class: 'num'}, number(t.subscribers)),
        h('td', {class: 'num'}, number(t.messages)),
        h('td', {class: 'num'}, number(t.last_seq)))))))));
  }

  async function closeConnection(c) {
    if (!confirm(`Close connection ${c.id} (${c.pattern} ${c.topic} from ${c.remote})?`)) return;
    const res = await request('DELETE', `/api/connections/${encodeURIComponent(c.id)}`);
    announce(res.ok ? `Connection ${c.id} closed.` : `Closing connection ${c.id} failed: ${errorText(res)}`);
    lastConns = '';
    poll();
  }

  function renderConnections(list) {
    const text = JSON.stringify(list);
    if (text === lastConns) return;
    lastConns = text;
    if (!list.length) {
      replace(connsBox, h('p', {class: 'muted'}, 'No open connection.'));
      return;
    }
    keepFocus(connsBox, () => replace(connsBox, h('div', {class: 'table-wrap'}, h('table', {},
      h('thead', {}, h('tr', {},
        h('th', {scope: 'col'}, 'Id'), h('th', {scope: 'col'}, 'Pattern'), h('th', {scope: 'col'}, 'Topic'),
        h('th', {scope: 'col'}, 'Remote'), h('th', {scope: 'col'}, 'User'), h('th', {scope: 'col'}, 'Since'),
        h('th', {scope: 'col', class: 'num'}, 'Queue'), h('th', {scope: 'col', class: 'num'}, 'Sent'),
        h('th', {scope: 'col'}, h('span', {class: 'offscreen'}, 'Actions')))),
      h('tbody', {}, list.map((c) => h('tr', {},
        h('td', {class: 'mono'}, c.id), h('td', {}, c.pattern), h('td', {}, h('code', {}, c.topic)),
        h('td', {class: 'mono'}, c.remote), h('td', {}, c.user || ''), h('td', {}, formatTime(c.since)),
        h('td', {class: 'num'}, c.queue ? `${number(c.queue.len)} / ${number(c.queue.cap)}` : ''),
        h('td', {class: 'num'}, number(c.messages_out)),
        h('td', {}, h('button', {type: 'button', class: 'small danger', 'data-focus-key': 'close:' + c.id,
          'aria-label': `Close connection ${c.id}`, onclick: () => closeConnection(c)}, 'Close')))))))));
  }

  async function poll() {
    if (busy) return;
    busy = true;
    try {
      const [ov, topics, conns] = await Promise.all([get('/api/overview'), get('/api/topics'), get('/api/connections')]);
      if (ov.ok && ov.json) {
        renderStats(ov.json);
        chart.push(ov.json.in_per_second, ov.json.out_per_second);
        chartBox.hidden = false;
      } else {
        replace(statsBox, unavailable('/api/overview', ov));
        chartBox.hidden = true;
        updated.textContent = '';
      }
      if (topics.ok && Array.isArray(topics.json)) renderTopics(topics.json);
      else { lastTopics = ''; replace(topicsBox, unavailable('/api/topics', topics)); }
      if (conns.ok && Array.isArray(conns.json)) renderConnections(conns.json);
      else { lastConns = ''; replace(connsBox, unavailable('/api/connections', conns)); }
    } catch (err) {
      replace(statsBox, h('p', {class: 'notice bad'}, err.message));
    } finally {
      busy = false;
    }
  }

  return {
    el,
    show() {
      poll();
      clearInterval(timer);
      timer = setInterval(() => { if (!document.hidden) poll(); }, 1000);
    },
    hide() {
      clearInterval(timer);
      timer = null;
    },
  };
}
