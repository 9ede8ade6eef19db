// The schema of the bus a topic falls under, fetched from the admin API
// and compiled in the browser with the vendored @cfworker/json-schema, so
// the publish form can refuse a message before sending it.
import {Validator, encodePointer} from '../vendor/json-schema/index.js';
import {get} from './api.js';
import {errorText} from './dom.js';

// A base URI for the bus's documents, so that "$ref": "defs.json#/…"
// resolves to the document fetched with &file=defs.json. It names them
// only; nothing is ever fetched from it.
function baseFor(bus) {
  return new URL(`/ui/schemas${bus === '/' ? '' : bus}/`, location.origin);
}

// draftOf maps "$schema" to a draft the validator knows; draft-06 is
// checked as draft 7 (its superset), no "$schema" as 2020-12 like the
// broker.
export function draftOf(doc) {
  const s = typeof doc === 'object' && doc ? String(doc.$schema || '') : '';
  if (/draft-04/.test(s)) return '4';
  if (/draft-06|draft-07/.test(s)) return '7';
  if (/2019-09/.test(s)) return '2019-09';
  return '2020-12';
}

// busOf returns the bus that topic falls under: the longest prefix, by
// whole segments.
export function busOf(buses, topic) {
  let best = null;
  for (const b of buses) {
    const p = b.bus;
    const covers = p === '/' || topic === p || topic.startsWith(p + '/');
    if (covers && (!best || p.length > best.bus.length)) best = b;
  }
  return best;
}

const cache = new Map(); // bus → Promise of a compiled schema

export function forgetSchemas() {
  cache.clear();
}

// schemaFor tells what the broker will check for topic:
// {kind: 'schema', bus, file, draft, validator} | {kind: 'none', message}
// | {kind: 'unknown', message} when the buses cannot be read.
export async function schemaFor(topic) {
  const res = await get('/api/buses');
  if (!res.ok || !res.json || !Array.isArray(res.json.buses)) {
    return {kind: 'unknown', message: `The buses cannot be read (${errorText(res)}): the broker checks the message when it arrives.`};
  }
  const bus = busOf(res.json.buses, topic);
  if (!bus) return {kind: 'none', message: `No bus covers ${topic}: the broker accepts any message there.`};
  if (!bus.schema) return {kind: 'none', bus: bus.bus, message: `Bus ${bus.bus} has no schema: the broker accepts any message there.`};
  if (!cache.has(bus.bus)) {
    const p = compile(bus);
    cache.set(bus.bus, p);
    p.catch(() => cache.delete(bus.bus));
  }
  return cache.get(bus.bus);
}

async function fetchDoc(bus, file) {
  const q = new URLSearchParams({bus});
  if (file) q.set('file', file);
  const res = await get(`/api/buses/schema?${q}`);
  if (!res.ok) throw new Error(`failed to fetch the schema of bus ${bus}${file ? ' (' + file + ')' : ''}: ${errorText(res)}`);
  try {
    return JSON.parse(res.text);
  } catch (err) {
    throw new Error(`the schema of bus ${bus}${file ? ' (' + file + ')' : ''} is not JSON: ${err.message}`);
  }
}

async function compile(bus) {
  const base = baseFor(bus.bus);
  const docs = bus.documents && bus.documents.length ? bus.documents : [bus.schema];
  const [main, ...others] = await Promise.all(docs.map((name, i) => fetchDoc(bus.bus, i === 0 ? '' : name)));
  const draft = draftOf(main);
  const root = typeof main === 'object' && main && !main.$id && !main.id ? {...main, $id: new URL(docs[0], base).href} : main;
  const validator = new Validator(root, draft, false);
  others.forEach((doc, i) => {
    if (typeof doc === 'object' && doc) validator.addSchema(doc, new URL(docs[i + 1], base).href);
  });
  return {kind: 'schema', bus: bus.bus, file: docs[0], documents: docs, draft, validator};
}

// pointer turns the validator's "#/a/0" into the JSON pointer "/a/0".
// The validator writes URI fragments: decoded, they are plain pointers.
function pointer(loc) {
  const frag = loc.replace(/^#/, '');
  try {
    return decodeURIComponent(frag);
  } catch {
    return frag;
  }
}

// check validates text against a compiled schema: {ok} or {ok: false,
// errors: [{at, message}]}. Only the most precise errors are kept: one
// that merely says a part failed is dropped when the part's own error is
// there.
export function check(schema, text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return {ok: false, errors: [{at: '', message: `not JSON: ${err.message}`}]};
  }
  const result = schema.validator.validate(value);
  if (result.valid) return {ok: true, errors: []};
  const errs = result.errors;
  const leaves = errs.filter((e) => !errs.some((o) => o !== e &&
    o.keywordLocation.startsWith(e.keywordLocation) &&
    (o.keywordLocation.length > e.keywordLocation.length || o.instanceLocation.length > e.instanceLocation.length)));
  const out = [];
  for (const e of leaves) {
    let at = pointer(e.instanceLocation);
    let message = e.error;
    if (e.keyword === 'false') {
      // A property that "additionalProperties": false forbids: its
      // parent's error below says so better.
      const parent = e.instanceLocation.replace(/\/[^/]*$/, '');
      if (leaves.some((o) => o !== e && o.instanceLocation === parent && /^Property /.test(o.error))) continue;
      message = 'no value is allowed here';
    }
    const m = /^Property "(.*)" does not match (additional|unevaluated) properties schema\.$/.exec(e.error);
    if (m) {
      const child = `${e.instanceLocation}/${encodePointer(m[1])}`;
      if (errs.some((o) => o.keyword === 'false' && o.instanceLocation === child)) {
        at = pointer(child);
        message = `property "${m[1]}" is not allowed (${m[2]}Properties)`;
      }
    }
    out.push({at, keyword: pointer(e.keywordLocation), message});
  }
  return {ok: false, errors: out};
}
