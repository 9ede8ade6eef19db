// mercury.js: the browser and Node client of the Mercury broker.
// One ES module, no dependencies, no build step. See README.md.
//
// Every subscription, bus, worker and publishing topic is one WebSocket in
// envelope mode (subprotocol mercury.v1) that reconnects by itself with
// exponential backoff and jitter. A subscription resumes from the last
// position it saw (?since=SEQ&epoch=E), so a restart of a durable broker
// loses nothing and repeats nothing.

const ENVELOPE = "mercury.v1";
const TOKEN_PROTOCOL = "mercury.token.";
// Close codes after which reconnecting cannot help.
const FINAL_CLOSES = new Set([4403, 4404, 4409]);
const TOKEN_EXPIRED = 4401;

/** The broker's refusal: {"error":{code,topic,message,…}}. */
export class MercuryError extends Error {
  constructor(e) {
    super(e.topic ? `${e.topic}: ${e.message} (${e.code})` : `${e.message} (${e.code})`);
    this.name = "MercuryError";
    Object.assign(this, { code: e.code, topic: e.topic, action: e.action, status: e.status, detail: e });
  }
}

/** Opens a client of the broker at url (ws://, wss://, http:// or https://). */
export function connect(url, options = {}) {
  return new Client(url, options);
}

class Client {
  constructor(url, options) {
    const base = String(url).replace(/\/+$/, "");
    this.wsBase = base.replace(/^http(s?):/, "ws$1:");
    this.httpBase = base.replace(/^ws(s?):/, "http$1:");
    this.options = options;
    this.token = options.token || "";
    this.links = new Set();
    this.senders = new Map(); // "pub /topic" → a sender link
    this.state = "connecting";
    this.closed = false;
    this.refreshTimer = null;
    this.refreshing = null;
    this.scheduleRefresh();
  }

  get WebSocket() {
    return this.options.WebSocket || globalThis.WebSocket;
  }

  /** Receives every message on topic and below it. */
  subscribe(topic, options = {}) {
    this.check();
    return new Subscription(this, topic, options);
  }

  /** Publishes data to topic; resolves with its sequence number once the broker accepted it. */
  publish(topic, data) {
    if (this.closed) return Promise.reject(new Error("mercury: the client is closed"));
    return this.sender("pub", topic).send(data);
  }

  /** Queues data on topic for one puller; resolves with its sequence number. */
  push(topic, data) {
    if (this.closed) return Promise.reject(new Error("mercury: the client is closed"));
    return this.sender("push", topic).send(data);
  }

  /**
   * Sends one message by HTTP POST to /pub, /push or /bus (pattern) and
   * resolves with its sequence number, or rejects at once with the
   * broker's error and HTTP status: for a one-off message, where a
   * WebSocket refused at its handshake would be retried until let in.
   */
  async post(pattern, topic, data) {
    if (!["pub", "push", "bus"].includes(pattern)) throw new Error(`mercury: post goes to pub, push or bus, not ${pattern}`);
    const resp = await this.http("POST", pattern, topic, new URLSearchParams(), data, { Accept: "application/json" });
    return (await resp.json()).seq;
  }

  /** Joins a bus: send() reaches every other peer (and itself with echo: true). */
  bus(topic, options = {}) {
    this.check();
    return new Bus(this, topic, options);
  }

  /** Pulls jobs from topic: handler resolves to ack, throws to nack. */
  pull(topic, handler, options = {}) {
    this.check();
    return new Worker(this, topic, handler, options);
  }

  /**
   * Sends data to the envelope-mode subscribers at or below topic and
   * resolves with the first answer's data; with all: every answer that
   * came within the timeout, as [{user, topic, data}].
   */
  async request(topic, data, options = {}) {
    const q = new URLSearchParams();
    if (options.timeout !== undefined) q.set("timeout", duration(options.timeout));
    if (options.all) q.set("all", "1");
    const resp = await this.http("POST", "req", topic, q, data);
    if (options.all) {
      const list = await resp.json();
      return list.map((a) => ({ user: a.user, topic: a.topic, data: decodeData(a) }));
    }
    return readBody(resp);
  }

  /** Lists the subscriptions at or below topic: [{topic, user, since, …}]. */
  async presence(topic) {
    const resp = await this.http("GET", "presence", topic, new URLSearchParams());
    return resp.json();
  }

  // http makes one HTTP call with the client's credential; a status
  // other than 2xx rejects with the broker's error.
  async http(method, pattern, topic, q, data, extraHeaders = {}) {
    this.check();
    if (this.needsToken()) await this.freshToken();
    const qs = q.toString();
    const url = `${this.httpBase}/${pattern}/${topicPath(topic)}${qs ? "?" + qs : ""}`;
    const call = () => {
      const headers = { ...extraHeaders };
      if (this.token) headers.Authorization = "Bearer " + this.token;
      const init = { method, headers, cache: "no-store" };
      if (data !== undefined) {
        init.body = encode(data);
        headers["Content-Type"] = typeof data === "string" ? "text/plain; charset=utf-8" : typeof init.body === "string" ? "application/json" : "application/octet-stream";
      }
      return fetch(url, init);
    };
    let resp = await call();
    if (resp.status === 401 && this.options.getToken) {
      await this.freshToken();
      resp = await call();
    }
    if (resp.ok) return resp;
    let e;
    try {
      e = (await resp.json()).error;
    } catch {}
    throw new MercuryError({ ...e, status: resp.status, code: e?.code || "http_" + resp.status, topic: e?.topic || topic, message: e?.message || resp.statusText });
  }

  /**
   * Asks getToken now (after a login or a logout, say) and uses its token
   * from then on: sent in-band to the open connections, at the handshake
   * of new ones; connections waiting to reconnect try again at once.
   */
  async refreshToken() {
    this.check();
    const t = await this.freshToken();
    for (const l of this.links) l.retryNow();
    return t;
  }

  /** Closes every connection of this client. */
  close() {
    this.closed = true;
    clearTimeout(this.refreshTimer);
    for (const l of [...this.links]) l.close();
    this.setState("closed");
  }

  check() {
    if (this.closed) throw new Error("mercury: the client is closed");
  }

  sender(pattern, topic) {
    this.check();
    const key = pattern + " " + topic;
    let s = this.senders.get(key);
    if (!s) {
      s = new Sender(this, pattern, topic, () => this.senders.delete(key));
      this.senders.set(key, s);
    }
    return s;
  }

  // The client's state sums up its connections': reconnecting when one
  // is, open when all are.
  updateState() {
    if (this.closed) return;
    const states = [...this.links].map((l) => l.state);
    let s = "open";
    if (states.includes("reconnecting")) s = "reconnecting";
    else if (states.includes("connecting")) s = "connecting";
    this.setState(s);
  }

  setState(s) {
    if (s === this.state) return;
    this.state = s;
    this.options.onState?.(s);
  }

  reportError(err) {
    if (this.options.onError) this.options.onError(err);
  }

  // freshToken asks getToken for a token, once however many ask at once.
  freshToken() {
    if (!this.options.getToken) return Promise.resolve(this.token);
    if (!this.refreshing) {
      this.refreshing = Promise.resolve()
        .then(() => this.options.getToken())
        .then((t) => {
          this.token = t || "";
          this.scheduleRefresh();
          for (const l of this.links) l.sendToken(this.token);
          return this.token;
        })
        .catch((err) => {
          this.reportError(err);
          return this.token;
        })
        .finally(() => (this.refreshing = null));
    }
    return this.refreshing;
  }

  // A JWT is refreshed before it expires, in-band ({"$token":…}), so no
  // connection is cut. Other credentials are refreshed on a 4401 close.
  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    const exp = jwtExpiry(this.token);
    if (!exp || !this.options.getToken || this.closed) return;
    const left = exp - Date.now();
    // A token about to expire that getToken gave back again: nothing
    // fresher to wait for; the broker's 4401 or 401 asks for one later.
    if (left <= 1000) return;
    const delay = Math.max(0, left - Math.min(60_000, Math.max(1000, left / 4)));
    this.refreshTimer = setTimeout(() => this.freshToken(), delay);
    this.refreshTimer.unref?.();
  }

  // needsToken reports whether a connection should get a token first:
  // there is none yet, or it is about to expire.
  needsToken() {
    if (!this.options.getToken) return false;
    const exp = jwtExpiry(this.token);
    return !this.token || (exp !== 0 && exp - Date.now() < 1000);
  }
}

// jwtExpiry returns a JWT's exp in milliseconds, 0 when token is not one.
function jwtExpiry(token) {
  const parts = String(token || "").split(".");
  if (parts.length !== 3) return 0;
  try {
    const json = atob(parts[1].replace(/-/g, "+").replace(/_/g, "/"));
    const exp = JSON.parse(json).exp;
    return typeof exp === "number" ? exp * 1000 : 0;
  } catch {
    return 0;
  }
}

// topicPath is topic as a URL path after the pattern: each segment
// escaped, so "?", "#", "%" or a space in a topic stays in the topic.
function topicPath(topic) {
  return String(topic).replace(/^\/+/, "").split("/").map(encodeURIComponent).join("/");
}

// duration turns a number of milliseconds into the broker's "500ms".
function duration(d) {
  return typeof d === "number" ? `${d}ms` : String(d);
}

// readBody returns an answer's body: JSON parsed, text as a string, other
// bytes as a Uint8Array.
async function readBody(resp) {
  const ct = (resp.headers.get("Content-Type") || "").toLowerCase();
  if (ct.startsWith("application/json")) return resp.json();
  if (ct.startsWith("text/")) return resp.text();
  return new Uint8Array(await resp.arrayBuffer());
}

// replyFrame is a responder's answer to request id, data encoded as the
// envelope's encoding says.
function replyFrame(id, data) {
  const f = { reply: id };
  if (typeof data === "string") Object.assign(f, { data, encoding: "text" });
  else if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    let bin = "";
    for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    Object.assign(f, { data: btoa(bin), encoding: "base64" });
  } else f.data = data === undefined ? null : data;
  return JSON.stringify(f);
}

// encode turns data into what a frame carries: strings as they are,
// bytes as a binary frame, anything else as JSON.
function encode(data) {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return data;
  return JSON.stringify(data);
}

// decodeData turns an envelope's data into the application's value.
function decodeData(env) {
  switch (env.encoding) {
    case "text":
      return env.data;
    case "base64": {
      const bin = atob(env.data);
      const out = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
      return out;
    }
  }
  return env.data;
}

// message is what the application sees of an envelope.
function message(env) {
  const m = { topic: env.topic, seq: env.seq, epoch: env.epoch, time: env.time, data: decodeData(env), encoding: env.encoding || "json" };
  if (env.id !== undefined) {
    m.id = env.id;
    m.attempt = env.attempt;
  }
  return m;
}

// Link is one WebSocket to /{pattern}/{topic} that reconnects until closed.
class Link {
  constructor(client, pattern, topic, options) {
    this.client = client;
    this.pattern = pattern;
    this.topic = topic;
    this.options = options;
    this.ws = null;
    this.state = "connecting";
    this.closed = false;
    this.failures = 0;
    this.timer = null;
    this.waiting = false; // a reconnection is waiting for its timer
    this.generation = 0; // counts connections, so late answers of an old one are ignored
    client.links.add(this);
  }

  url() {
    const q = this.query ? this.query() : new URLSearchParams();
    const qs = q.toString();
    return `${this.client.wsBase}/${this.pattern}/${topicPath(this.topic)}${qs ? "?" + qs : ""}`;
  }

  setState(s) {
    if (s === this.state) return;
    this.state = s;
    this.options.onState?.(s);
    this.client.updateState();
  }

  async open() {
    if (this.closed) return;
    if (this.client.needsToken()) await this.client.freshToken();
    if (this.closed) return;
    const WS = this.client.WebSocket;
    if (!WS) {
      if (!this.client.warnedNoWebSocket) {
        this.client.warnedNoWebSocket = true;
        this.client.reportError(new Error("mercury: no WebSocket here: use Node 22, node --experimental-websocket, or options.WebSocket"));
      }
      return this.failed();
    }
    const protocols = [ENVELOPE];
    if (this.client.token) protocols.push(TOKEN_PROTOCOL + this.client.token);
    let ws;
    try {
      ws = new WS(this.url(), protocols);
    } catch (err) {
      return this.failed(err);
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    const gen = ++this.generation;
    let opened = false;
    ws.onopen = () => {
      if (this.closed) return ws.close(1000);
      opened = true;
      this.failures = 0;
      this.setState("open");
      this.connected(gen);
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== "string") return; // envelope mode sends text only
      let f;
      try {
        f = JSON.parse(ev.data);
      } catch {
        return this.reportError(new Error("not a JSON frame: " + ev.data.slice(0, 100)));
      }
      if (f.ok === "token") return;
      if (f.error && /^token/.test(f.error.code || "")) return this.client.reportError(new MercuryError(f.error));
      this.frame(f, gen);
    };
    let ended = false;
    const end = (ev) => {
      if (ended) return;
      ended = true;
      if (this.ws === ws) this.ws = null;
      this.disconnected(gen, ev);
      if (this.closed) return;
      if (FINAL_CLOSES.has(ev.code)) {
        const err = new MercuryError({ code: "closed_" + ev.code, topic: this.topic, message: ev.reason || "closed" });
        this.fail(err);
        this.reportError(err); // before the state says closed: the reason first
        return this.close();
      }
      if (ev.code === TOKEN_EXPIRED && this.client.options.getToken) {
        this.setState("reconnecting");
        return this.client.freshToken().then(() => this.open());
      }
      if (!opened) return this.failed(new Error(`WebSocket to ${this.url()} failed (${ev.code})`));
      this.retry();
    };
    // A refused handshake: some WebSockets (Node 20's) never fire close.
    ws.onerror = () => opened || end({ code: 1006, reason: "handshake failed" });
    ws.onclose = end;
  }

  // failed is a connection that never opened.
  failed() {
    this.retry();
  }

  retry() {
    if (this.closed) return;
    this.setState("reconnecting");
    const o = this.client.options;
    const initial = o.backoff?.initial ?? 250;
    const max = o.backoff?.max ?? 30_000;
    const full = Math.min(max, initial * 2 ** Math.min(this.failures, 20));
    this.failures++;
    const delay = full / 2 + (Math.random() * full) / 2; // jitter: reconnecting clients spread out
    clearTimeout(this.timer);
    this.waiting = true;
    this.timer = setTimeout(() => {
      this.waiting = false;
      this.open();
    }, delay);
  }

  // retryNow ends the wait before a reconnection: a new credential may
  // be what was missing.
  retryNow() {
    if (!this.waiting || this.closed) return;
    clearTimeout(this.timer);
    this.waiting = false;
    this.open();
  }

  // reportError tells the handle's onError, or else the client's.
  reportError(err) {
    if (this.options.onError) this.options.onError(err);
    else this.client.reportError(err);
  }

  sendToken(token) {
    if (this.ws && this.ws.readyState === 1 && token) this.ws.send(JSON.stringify({ $token: token }));
  }

  write(frame) {
    this.ws.send(frame);
  }

  isOpen() {
    return this.ws !== null && this.ws.readyState === 1 && this.state === "open";
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.client.links.delete(this);
    if (this.ws) this.ws.close(1000);
    this.disconnected(this.generation, { code: 1000, reason: "closed" });
    this.setState("closed");
    this.client.updateState();
  }

  // Hooks for the kinds of link.
  fail() {}
  connected() {}
  frame() {}
  disconnected() {}
}

// Confirmer matches the broker's answers ({"ok":SEQ} or {"error":…}),
// which come once per frame and in order, to the frames sent.
class Confirmer {
  constructor(link) {
    this.link = link;
    this.outbox = []; // frames not yet sent: {frame, resolve, reject}
    this.pending = []; // frames sent on the current connection
  }

  send(data) {
    return new Promise((resolve, reject) => {
      if (this.link.closed) return reject(new Error("closed"));
      this.outbox.push({ frame: encode(data), resolve, reject });
      this.flush();
    });
  }

  flush() {
    while (this.outbox.length && this.link.isOpen()) {
      const p = this.outbox.shift();
      this.link.write(p.frame);
      this.pending.push(p);
    }
  }

  // answer settles the oldest frame sent; false when f is no answer.
  answer(f) {
    if (typeof f.ok === "number") this.pending.shift()?.resolve(f.ok);
    else if (f.error && this.pending.length) this.pending.shift().reject(new MercuryError(f.error));
    else return false;
    return true;
  }

  // lost rejects what was sent but not answered: the broker may or may
  // not have taken it, so it is not sent twice behind the caller's back.
  lost(reason) {
    for (const p of this.pending.splice(0)) {
      p.reject(new MercuryError({ code: "connection_lost", topic: this.link.topic, message: `connection lost before the broker answered (${reason}); the message may have been accepted` }));
    }
  }

  fail(err) {
    this.lost(err.message);
    for (const p of this.outbox.splice(0)) p.reject(err);
  }

  idle() {
    return this.outbox.length === 0 && this.pending.length === 0;
  }
}

// Sender publishes or pushes to one topic; it closes after a quiet spell.
class Sender extends Link {
  constructor(client, pattern, topic, forget) {
    super(client, pattern, topic, {});
    this.forget = forget;
    this.confirmer = new Confirmer(this);
    this.idleTimer = null;
    this.open();
  }

  send(data) {
    clearTimeout(this.idleTimer);
    return this.confirmer.send(data);
  }

  connected() {
    this.confirmer.flush();
  }

  frame(f) {
    if (!this.confirmer.answer(f) && f.error) this.reportError(new MercuryError(f.error));
    if (this.confirmer.idle()) {
      clearTimeout(this.idleTimer);
      this.idleTimer = setTimeout(() => this.confirmer.idle() && this.close(), 30_000);
      this.idleTimer.unref?.();
    }
  }

  disconnected(gen, ev) {
    this.confirmer.lost(ev.reason || "code " + ev.code);
  }

  fail(err) {
    this.confirmer.fail(err);
  }

  close() {
    clearTimeout(this.idleTimer);
    this.forget();
    this.confirmer.fail(new Error("closed"));
    super.close();
  }
}

// Subscription receives topic and below, resuming where it left off.
class Subscription extends Link {
  constructor(client, topic, options) {
    super(client, "sub", topic, options);
    this.epoch = options.epoch || "";
    this.seq = null; // the last position seen; null: live from the start
    const since = options.since;
    if (typeof since === "string" && since.includes(":")) {
      const i = since.lastIndexOf(":");
      this.epoch = since.slice(0, i);
      this.seq = Number(since.slice(i + 1));
    } else if (since !== undefined && since !== null) {
      this.seq = Number(since);
    }
    this.sse = null;
    this.open();
  }

  /** The position to resume from: "EPOCH:SEQ", or null before any message. */
  get position() {
    if (this.seq === null) return null;
    return this.epoch ? `${this.epoch}:${this.seq}` : String(this.seq);
  }

  query() {
    const q = new URLSearchParams();
    if (this.seq !== null) {
      q.set("since", String(this.seq));
      if (this.epoch) q.set("epoch", this.epoch);
    }
    if (this.options.presence || this.options.onPresence) q.set("presence", "1");
    return q;
  }

  frame(f, gen) {
    if (f.gap) return this.gap(f.gap);
    if (f.error) return this.reportError(new MercuryError(f.error));
    if (f.presence) return this.options.onPresence?.(f.presence);
    if (f.reply !== undefined && f.seq === undefined) return this.answer(f, gen);
    if (f.seq === undefined) return;
    this.deliver(f);
  }

  // answer runs onRequest for a request and sends its outcome back; a
  // handler that throws answers {"error": its message}.
  async answer(req, gen) {
    if (!this.options.onRequest) return;
    let data;
    try {
      data = await this.options.onRequest(decodeData(req), { id: req.reply, topic: req.topic, time: req.time });
    } catch (err) {
      data = { error: String(err?.message ?? err) };
    }
    // A request is answered on the connection that received it, or not at all.
    if (gen === this.generation && this.isOpen()) this.write(replyFrame(req.reply, data));
  }

  deliver(env) {
    // After a reconnection the broker starts after our position; this
    // guards against a repeat all the same.
    if (this.seq !== null && env.seq <= this.seq && (!env.epoch || env.epoch === this.epoch)) return;
    this.seq = env.seq;
    if (env.epoch) this.epoch = env.epoch;
    this.options.onMessage?.(message(env));
  }

  gap(g) {
    if (g.reset) {
      // The broker started a new life: what follows is numbered afresh.
      this.epoch = g.epoch || "";
      this.seq = 0;
    }
    this.options.onGap?.(g);
  }

  // A WebSocket that never opened: try Server-Sent Events before waiting.
  failed(err) {
    if (this.options.transport === "websocket" || this.closed) return this.retry();
    this.openSSE(err);
  }

  async openSSE() {
    if (this.closed) return;
    if (this.client.needsToken()) await this.client.freshToken();
    if (this.closed) return;
    const q = this.query();
    q.set("envelope", "1");
    const url = `${this.client.httpBase}/sub/${topicPath(this.topic)}?${q}`;
    const headers = { Accept: "text/event-stream" };
    if (this.client.token) headers.Authorization = "Bearer " + this.client.token;
    const abort = new AbortController();
    this.sse = abort;
    let resp;
    try {
      resp = await fetch(url, { headers, signal: abort.signal, cache: "no-store" });
    } catch {
      this.sse = null;
      return this.retry();
    }
    if (!resp.ok) {
      this.sse = null;
      let e;
      try {
        e = (await resp.json()).error;
      } catch {}
      const err = new MercuryError({ status: resp.status, code: e?.code || "http_" + resp.status, topic: this.topic, message: e?.message || resp.statusText });
      if (resp.status === 401 && this.client.options.getToken) {
        this.reportError(err);
        await this.client.freshToken();
        return this.retry();
      }
      if ([400, 403, 404].includes(resp.status)) {
        this.reportError(err);
        return this.close();
      }
      return this.retry();
    }
    this.failures = 0;
    this.setState("open");
    try {
      await this.readEvents(resp.body.getReader());
    } catch {}
    if (this.sse === abort) this.sse = null;
    // Reconnect, trying a WebSocket first: its refusal may have passed.
    this.retry();
  }

  open() {
    if (this.options.transport === "sse") return this.openSSE();
    return super.open();
  }

  async readEvents(reader) {
    const dec = new TextDecoder();
    let buf = "";
    let event = "";
    let data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += dec.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, "");
        buf = buf.slice(nl + 1);
        if (line === "") {
          if (data.length) this.sseEvent(event, data.join("\n"));
          event = "";
          data = [];
        } else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        else if (line.startsWith("event:")) event = line.slice(6).trim();
      }
    }
  }

  sseEvent(event, data) {
    let v;
    try {
      v = JSON.parse(data);
    } catch {
      return;
    }
    if (event === "gap") this.gap(v);
    else if (event === "presence") this.options.onPresence?.(v.presence ?? v);
    else if (event === "error") {
      const err = new MercuryError(v.error || v);
      // The stream ends when its token expires: reconnect with a fresh one.
      if (err.code === "token_expired") this.client.freshToken();
      else this.reportError(err);
    }
    else if (v && v.seq !== undefined) this.deliver(v);
  }

  close() {
    this.sse?.abort();
    this.sse = null;
    super.close();
  }
}

// Bus is one peer of a bus: no replay, answers for what it sends.
class Bus extends Link {
  constructor(client, topic, options) {
    super(client, "bus", topic, options);
    this.confirmer = new Confirmer(this);
    this.open();
  }

  query() {
    return new URLSearchParams(this.options.echo ? { echo: "1" } : {});
  }

  /** Sends data to the bus; resolves with its sequence number. */
  send(data) {
    return this.confirmer.send(data);
  }

  connected() {
    this.confirmer.flush();
  }

  frame(f) {
    if (this.confirmer.answer(f)) return;
    if (f.error) return this.reportError(new MercuryError(f.error));
    if (f.seq !== undefined) this.options.onMessage?.(message(f));
  }

  disconnected(gen, ev) {
    this.confirmer.lost(ev.reason || "code " + ev.code);
  }

  fail(err) {
    this.confirmer.fail(err);
  }

  close() {
    this.confirmer.fail(new Error("closed"));
    super.close();
  }
}

// Worker pulls jobs and settles each with the handler's outcome.
class Worker extends Link {
  constructor(client, topic, handler, options) {
    super(client, "pull", topic, options);
    this.handler = handler;
    this.open();
  }

  query() {
    const q = new URLSearchParams();
    for (const k of ["prefetch", "ttl", "exclusive", "takeover", "must_exist"]) {
      const v = this.options[k === "must_exist" ? "mustExist" : k];
      if (v !== undefined && v !== false) q.set(k, v === true ? "1" : String(v));
    }
    return q;
  }

  frame(f, gen) {
    if (f.error) return this.reportError(new MercuryError(f.error));
    if (f.id === undefined) return;
    this.run(f, gen);
  }

  async run(env, gen) {
    let answer;
    try {
      await this.handler(message(env));
      answer = { ack: env.id };
    } catch (err) {
      answer = { nack: env.id, error: String(err?.message ?? err) };
      const delay = err?.delay ?? this.options.nackDelay;
      if (delay) answer.delay = typeof delay === "number" ? `${delay}ms` : String(delay);
    }
    // A job of a connection that is gone is the broker's again: it comes
    // back with the same id, so it is not settled here.
    if (gen === this.generation && this.isOpen()) this.write(JSON.stringify(answer));
  }
}
