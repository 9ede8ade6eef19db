// Audit: one Minion job's timeline from the audit bridge's events. The
// bridge publishes each job's events under BASE/QUEUE/TASK/JOB; a job may
// move between queues, so the view replays the whole base (a mercury.js
// subscription from sequence 0) and keeps the events of that job, then
// goes on live, resuming where it was after a lost connection.
import {h, replace, field, formatTime, announce} from './dom.js';
import {normalizeTopic} from './api.js';
import {mercury, reportTo, errorMessage} from './live.js';

const DEFAULT_BASE = '/audit/minion';

function short(v, max = 80) {
  const s = typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v);
  if (s === undefined) return 'null';
  return s.length > max ? s.slice(0, max - 1) + '…' : s;
}

function workerText(w) {
  if (!w) return '';
  const where = [w.host, w.pid ? `pid ${w.pid}` : ''].filter(Boolean).join(' ');
  return `${w.id ?? '?'}${where ? ' (' + where + ')' : ''}${w.gone ? ', gone' : ''}`;
}

export function create({navigate}) {
  const heading = h('h1', {tabindex: '-1'}, 'Audit: a Minion job\'s timeline');
  const jobInput = h('input', {id: 'audit-job', name: 'job', inputmode: 'numeric', required: true, size: 12, autocomplete: 'off'});
  const baseInput = h('input', {id: 'audit-base', name: 'base', value: DEFAULT_BASE, spellcheck: 'false', autocomplete: 'off'});
  const form = h('form', {class: 'row', id: 'audit-form'},
    field('Job id', jobInput),
    h('div', {class: 'field grow'}, field('Bridge\'s base topic', baseInput, 'the bridge\'s --topic (minion.topic)')),
    h('button', {type: 'submit', class: 'primary'}, 'Show timeline'));
  const status = h('p', {id: 'audit-status', role: 'status', class: 'muted'});
  const summary = h('div', {id: 'audit-summary'});
  const timeline = h('div', {id: 'audit-timeline'});
  const el = h('section', {class: 'view', id: 'view-audit'},
    heading,
    h('div', {class: 'panel'}, form,
      h('p', {class: 'hint'}, 'The history kept under the base topic is replayed, then new events arrive live.')),
    h('section', {class: 'panel', 'aria-labelledby': 'audit-h'}, h('h2', {id: 'audit-h'}, 'Timeline'), status, summary, timeline));

  let sub = null;
  let state = 'connecting';
  let error = '';
  let events = [];
  let seen = new Set();
  let scanned = 0;
  let job = null;
  let base = DEFAULT_BASE;

  function start(jobID, baseTopic) {
    if (sub) sub.close();
    job = jobID;
    base = baseTopic;
    events = [];
    seen = new Set();
    scanned = 0;
    replace(summary);
    replace(timeline, h('p', {class: 'muted'}, `No event for job ${job} yet.`));
    state = 'connecting';
    error = '';
    const mine = mercury.subscribe(base, {
      since: 0,
      onMessage: (msg) => {
        if (sub !== mine) return;
        scanned++;
        const e = msg.data;
        if (!e || typeof e !== 'object' || e.job_id !== job) return renderStatus();
        if (e.event_id && seen.has(e.event_id)) return renderStatus(); // a repeat from the bridge
        if (e.event_id) seen.add(e.event_id);
        events.push({e, env: msg});
        render();
      },
      onState: (s) => {
        if (sub !== mine) return;
        state = s;
        if (s === 'open') error = '';
        renderStatus();
      },
      onError: reportTo((err) => {
        if (sub !== mine) return;
        error = errorMessage(err);
        renderStatus();
      }),
    });
    sub = mine;
    renderStatus();
  }

  function renderStatus() {
    if (!sub) return;
    const counts = `${events.length} event${events.length === 1 ? '' : 's'} for job ${job}, ${scanned} scanned under ${base}`;
    const why = error ? ` ${error}.` : '';
    status.dataset.state = state;
    if (state === 'open') {
      status.className = 'status-ok';
      status.textContent = `Listening: ${counts}.`;
    } else if (state === 'connecting') {
      status.className = 'muted';
      status.textContent = `Connecting to ${base}…${why}`;
    } else if (state === 'reconnecting') {
      status.className = 'status-bad';
      status.textContent = `Reconnecting to ${base}, to resume where it was. ${counts}.${why}`;
    } else {
      status.className = 'status-bad';
      status.textContent = `Subscription to ${base} closed.${why} ${counts}.`;
    }
  }

  function render() {
    renderStatus();
    const latest = events[events.length - 1].e;
    const j = latest.job || {};
    const kv = (k, v) => [h('dt', {}, k), h('dd', {}, v)];
    replace(summary, h('dl', {class: 'kv', id: 'audit-job-summary'},
      kv('Job', String(latest.job_id)),
      kv('Task', latest.task ?? j.task ?? ''),
      kv('Queue', latest.queue ?? j.queue ?? ''),
      kv('State now', latest.state_after ?? '(removed)'),
      j.args !== undefined ? kv('Arguments', h('code', {}, short(j.args, 200))) : null,
      j.priority !== undefined ? kv('Priority', String(j.priority)) : null,
      j.attempts !== undefined ? kv('Attempts', String(j.attempts)) : null,
      j.result !== undefined && j.result !== null ? kv('Result', h('code', {}, short(j.result, 200))) : null));
    replace(timeline, h('div', {class: 'table-wrap'}, h('table', {class: 'timeline'},
      h('caption', {class: 'offscreen'}, `Events of job ${job}, oldest first`),
      h('thead', {}, h('tr', {},
        h('th', {scope: 'col'}, 'Time'), h('th', {scope: 'col'}, 'Event'), h('th', {scope: 'col'}, 'State'),
        h('th', {scope: 'col'}, 'Changed'), h('th', {scope: 'col'}, 'Worker'), h('th', {scope: 'col'}, 'Seq'))),
      h('tbody', {}, events.map(({e, env}) => h('tr', {dataset: {event: e.type}},
        h('td', {}, h('time', {datetime: e.time}, formatTime(e.time))),
        h('td', {class: 'type'}, e.type + (e.retry ? ` (${e.retry})` : '')),
        h('td', {class: 'state'}, `${e.state_before ?? '—'} → ${e.state_after ?? '—'}`),
        h('td', {}, h('ul', {class: 'changes'}, Object.entries(e.changes || {}).map(([k, c]) =>
          h('li', {}, h('code', {}, k), `: ${short(c.old, 40)} → ${short(c.new, 40)}`)))),
        h('td', {}, workerText(e.job && e.job.worker)),
        h('td', {class: 'mono'}, String(env.seq))))))));
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = jobInput.value.trim();
    if (!/^\d+$/.test(id)) {
      jobInput.setAttribute('aria-invalid', 'true');
      status.className = 'status-bad';
      status.textContent = 'A job id is a whole number.';
      jobInput.focus();
      return;
    }
    jobInput.removeAttribute('aria-invalid');
    const b = normalizeTopic(baseInput.value || DEFAULT_BASE);
    navigate('audit', {job: id, base: b});
  });

  return {
    el,
    show(params, reload) {
      const id = params.get('job');
      const b = params.get('base') || DEFAULT_BASE;
      if (!id || !/^\d+$/.test(id)) return;
      jobInput.value = id;
      baseInput.value = b;
      if (reload || !sub || Number(id) !== job || b !== base || state === 'closed') {
        start(Number(id), b);
        announce(`Showing the timeline of job ${id}.`);
      }
    },
    hide() {},
  };
}
