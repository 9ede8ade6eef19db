// Publish form: the payload is checked against the bus's schema in the
// browser before it is sent; an invalid one is not sent (unless "Send
// anyway", to see the broker's own refusal). It is sent with mercury.js's
// post (one message, answered at once: a missing right or login is told,
// not retried), and the broker's answer shown as it came.
import {h, replace, field, announce, pretty} from './dom.js';
import {normalizeTopic} from './api.js';
import {schemaFor, check, forgetSchemas} from './schema.js';
import {mercury, unauthorized} from './live.js';

export function create() {
  const heading = h('h1', {tabindex: '-1'}, 'Publish');
  const pattern = h('select', {id: 'publish-pattern', name: 'pattern'},
    h('option', {value: 'pub'}, 'pub: to subscribers'),
    h('option', {value: 'push'}, 'push: to a work queue'),
    h('option', {value: 'bus'}, 'bus: to the bus room'));
  const topic = h('input', {id: 'publish-topic', name: 'topic', required: true, placeholder: '/livesys/42', spellcheck: 'false', autocomplete: 'off'});
  const payload = h('textarea', {id: 'publish-payload', name: 'payload', spellcheck: 'false', rows: 10});
  const schemaLine = h('p', {id: 'publish-schema', class: 'muted'}, 'Enter a topic to see its bus and schema.');
  const errors = h('div', {id: 'publish-errors', tabindex: '-1'});
  const result = h('div', {id: 'publish-result', 'aria-live': 'polite'});
  const send = h('button', {type: 'submit', class: 'primary', id: 'publish-send'}, 'Check and send');
  const checkOnly = h('button', {type: 'button', id: 'publish-check'}, 'Check only');
  const anyway = h('button', {type: 'button', id: 'publish-anyway', class: 'danger', hidden: true}, 'Send anyway');
  const form = h('form', {id: 'publish-form', novalidate: true},
    h('div', {class: 'row'}, field('Send as', pattern), h('div', {class: 'field grow'}, field('Topic', topic))),
    schemaLine,
    h('div', {class: 'field'}, field('Payload', payload, 'JSON is checked against the bus\'s schema; text is sent as it is.')),
    errors,
    h('div', {class: 'actions'}, send, checkOnly, anyway));
  const el = h('section', {class: 'view', id: 'view-publish'},
    heading, h('div', {class: 'panel'}, form),
    h('section', {class: 'panel', 'aria-labelledby': 'publish-result-h'}, h('h2', {id: 'publish-result-h'}, 'Broker\'s answer'), result));

  let schemaSeq = 0;

  async function describe() {
    const t = topic.value.trim();
    if (!t) return null;
    const seq = ++schemaSeq;
    const info = await schemaFor(normalizeTopic(t)).catch((err) => ({kind: 'unknown', message: err.message}));
    if (seq === schemaSeq) {
      schemaLine.className = info.kind === 'unknown' ? 'notice' : 'muted';
      schemaLine.textContent = info.kind === 'schema'
        ? `Bus ${info.bus}: checked against ${info.documents.join(' + ')} (draft ${info.draft}) before sending.`
        : info.message;
    }
    return info;
  }

  let timer;
  topic.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(describe, 300);
  });
  topic.addEventListener('change', describe);

  function showErrors(list, bus) {
    payload.setAttribute('aria-invalid', 'true');
    payload.setAttribute('aria-describedby', 'publish-payload-hint publish-errors');
    replace(errors, h('div', {class: 'notice bad', role: 'alert'},
      h('strong', {}, `Not sent: the payload does not match the schema of bus ${bus}.`),
      h('ul', {class: 'errors'}, list.map((e) => h('li', {},
        h('code', {}, e.at === '' ? '(the whole message)' : e.at), ': ', e.message,
        e.keyword ? h('span', {class: 'muted'}, ` (schema ${e.keyword})`) : null)))));
    anyway.hidden = false;
  }

  function clearErrors() {
    payload.removeAttribute('aria-invalid');
    payload.setAttribute('aria-describedby', 'publish-payload-hint');
    replace(errors);
    anyway.hidden = true;
  }

  // validate answers whether the payload may be sent.
  async function validate() {
    clearErrors();
    const info = await describe();
    if (!info) {
      topic.setAttribute('aria-invalid', 'true');
      replace(errors, h('p', {class: 'notice bad', role: 'alert'}, 'Which topic? Enter one.'));
      topic.focus();
      return false;
    }
    topic.removeAttribute('aria-invalid');
    if (info.kind !== 'schema') return true;
    const r = check(info, payload.value);
    if (r.ok) return true;
    showErrors(r.errors, info.bus);
    return false;
  }

  // errorBody is the broker's error as it sent it, without the status
  // mercury.js adds.
  function errorBody(e) {
    const {status, ...body} = e;
    return body;
  }

  async function doSend() {
    const t = normalizeTopic(topic.value);
    // The text as typed: the broker reads JSON as JSON, anything else as text.
    const body = payload.value;
    const how = pattern.value;
    replace(result, h('p', {class: 'muted'}, `Sending to /${how}${t}…`));
    let seq;
    let err;
    try {
      seq = await mercury.post(how, t, body);
    } catch (e) {
      err = e;
    }
    const e = err && err.name === 'MercuryError' ? err.detail : null;
    const summary = !err
      ? `Accepted, sequence ${seq}.`
      : e ? `${e.status}: refused (${e.code}).` : `Not sent: ${err.message}`;
    unauthorized(err);
    replace(result,
      h('p', {id: 'publish-status', class: err ? 'notice bad' : 'notice ok', dataset: {status: e ? String(e.status) : ''}}, summary),
      e && e.details ? h('ul', {class: 'errors'}, e.details.map((d) => h('li', {},
        h('code', {}, d.at === '' ? '(the whole message)' : (d.at || '')), ': ', d.message,
        d.schema ? h('span', {class: 'muted'}, ` (schema ${d.schema})`) : null))) : null,
      err && !e ? null : h('pre', {id: 'publish-answer'}, pretty(err ? {error: errorBody(e)} : {seq})));
    announce(summary);
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    send.disabled = true;
    try {
      if (await validate()) await doSend();
      else {
        announce('Not sent: see the errors.');
        errors.focus();
      }
    } finally {
      send.disabled = false;
    }
  });
  checkOnly.addEventListener('click', async () => {
    if (await validate()) {
      replace(errors, h('p', {class: 'notice ok', role: 'status'}, 'The payload matches; nothing was sent.'));
    }
  });
  anyway.addEventListener('click', () => doSend());

  return {
    el,
    show(params) {
      forgetSchemas(); // the buses may have been reloaded
      if (params.get('topic')) topic.value = params.get('topic');
      if (topic.value) describe();
    },
    hide() {},
  };
}
