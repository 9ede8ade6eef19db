// Small DOM helpers. Text always goes in as text (textContent), never as
// HTML: messages and API answers are shown exactly as they came.

// h builds an element: h('button', {class: 'x', onclick: f}, 'Text', child).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.className = v;
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (k in el && typeof v !== 'string') {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

// replace empties el and puts children in it.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// pretty returns a payload as text to show: JSON indented, anything else
// as it is.
export function pretty(value) {
  if (typeof value === 'string') return value;
  return JSON.stringify(value, null, 2);
}

// formatTime shows an RFC 3339 time in the reader's locale, with
// milliseconds.
export function formatTime(t) {
  if (!t) return '';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return d.toLocaleString(undefined, {
    year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit', fractionalSecondDigits: 3,
  });
}

// number formats a count or a rate for a table.
export function number(n, digits = 0) {
  if (n === undefined || n === null) return '—';
  return Number(n).toLocaleString(undefined, {maximumFractionDigits: digits, minimumFractionDigits: digits});
}

// announce says text to screen readers through the page's live region.
export function announce(text) {
  const live = document.getElementById('live');
  if (!live) return;
  live.textContent = '';
  // A new node, so the same text twice is read twice.
  requestAnimationFrame(() => { live.textContent = text; });
}

// copyText puts text on the clipboard; the page is same-origin and
// usually a secure context (localhost or HTTPS), else the old way.
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const ta = h('textarea', {class: 'offscreen', 'aria-hidden': 'true'});
  ta.value = text;
  document.body.append(ta);
  ta.select();
  const ok = document.execCommand('copy');
  ta.remove();
  if (!ok) throw new Error('the browser refused to copy');
}

// field is a label and its control, tied together by id.
export function field(label, control, hint) {
  const id = control.id || (control.id = uid(control.name || 'f'));
  const parts = [h('label', {for: id}, label), control];
  if (hint) {
    const hid = id + '-hint';
    parts.push(h('span', {class: 'hint', id: hid}, hint));
    control.setAttribute('aria-describedby', hid);
  }
  return h('div', {class: 'field'}, parts);
}

let uidCount = 0;
export function uid(prefix) {
  uidCount++;
  return `${prefix}-${uidCount}`;
}

// errorText is one line for an API error answer or a thrown error.
export function errorText(res) {
  if (res instanceof Error) return res.message;
  const e = res && res.json && res.json.error;
  if (e) return `${res.status}: ${e.code ? e.code + ': ' : ''}${e.message}`;
  return `${res.status} ${res.statusText || ''} ${res.text || ''}`.trim();
}

// keepFocus runs rebuild (which replaces part of the page) and puts the
// focus back on the control with the same data-focus-key, so a table that
// refreshes every second stays usable from the keyboard.
export function keepFocus(container, rebuild) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.focusKey : undefined;
  rebuild();
  if (key) {
    const again = container.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
    if (again) again.focus();
  }
}
