// Scenarios of mercury.js against a real broker, driven by
// test/mercuryjs_test.go: node --experimental-websocket mercuryjs.mjs
// SCENARIO URL [ARG]. Each prints JSON lines: progress for the Go side
// to act on, then {"result":…} or {"fail":"…"}.
import { connect } from "../../web/client/js/mercury.js";

const [scenario, url, arg] = process.argv.slice(2);
const print = (v) => process.stdout.write(JSON.stringify(v) + "\n");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const errors = [];
const states = [];
const m = connect(url, {
  backoff: { initial: 100, max: 1000 },
  onState: (s) => states.push(s),
  onError: (e) => errors.push(e.message),
  ...(scenario === "token" ? tokenOptions() : {}),
  ...(scenario === "agentToken" ? { token: arg } : {}),
});

function tokenOptions() {
  // The application's backend mints tokens; here the Go test does.
  let minted = 0;
  return {
    getToken: async () => {
      minted++;
      const r = await fetch(arg);
      const t = await r.text();
      print({ minted });
      return t;
    },
  };
}

async function until(what, cond, ms = 30_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

const scenarios = {
  // publish confirms, the broker's refusal, a bus without echo.
  async basics() {
    const got = [];
    m.subscribe("/typed", { onMessage: (msg) => got.push(msg) });
    await until("subscribed", () => m.state === "open");
    const seq = await m.publish("/typed/a", { n: 1 });
    let refused = null;
    try {
      await m.publish("/typed/a", { no: 1 });
    } catch (err) {
      refused = { name: err.name, code: err.code, topic: err.topic, message: err.message };
    }
    const a = [],
      b = [];
    const busA = m.bus("/room", { echo: false, onMessage: (msg) => a.push(msg.data) });
    const busB = m.bus("/room", { onMessage: (msg) => b.push(msg.data) });
    await until("bus open", () => busA.state === "open" && busB.state === "open");
    const busSeq = await busA.send({ from: "a" });
    await until("bus delivered", () => b.length === 1);
    await sleep(200); // a frame to A itself would have come by now
    await until("message", () => got.length === 1);
    return { seq, refused, got, busSeq, a, b };
  },

  // Subscribes from the start of a durable bus and publishes 2,000
  // messages while the Go side kills and restarts the broker.
  async durable() {
    const got = [];
    const sub = m.subscribe("/durable", { since: 0, onMessage: (msg) => got.push([msg.seq, msg.data.i]), onGap: (g) => print({ gap: g }) });
    await until("subscribed", () => sub.state === "open");
    const confirmed = [];
    let retries = 0;
    for (let i = 0; i < 2000; i++) {
      for (;;) {
        try {
          confirmed.push(await m.publish("/durable/x", { i }));
          break;
        } catch (err) {
          retries++; // not confirmed: publish again (it may be there twice)
          await sleep(50);
        }
      }
      if (i % 100 === 99) print({ published: i + 1 });
    }
    const last = confirmed[confirmed.length - 1];
    await until("all received", () => got.length && got[got.length - 1][0] >= last);
    return { got, confirmed, retries, reconnects: states.filter((s) => s === "reconnecting").length };
  },

  // 500 jobs; every tenth is refused once; each must be done once.
  async pull() {
    const done = new Map();
    let nacked = 0;
    for (let i = 0; i < 500; i++) await m.push("/work", { i });
    m.pull(
      "/work",
      async (job) => {
        if (job.data.i % 10 === 0 && job.attempt === 1) {
          nacked++;
          throw new Error("not now");
        }
        done.set(job.data.i, (done.get(job.data.i) || 0) + 1);
      },
      { prefetch: 4 },
    );
    await until("all done", () => done.size === 500);
    await sleep(300);
    return { done: [...done.values()], nacked };
  },

  // Subscribes and publishes for a minute with tokens that live 5 s.
  async token() {
    const got = [];
    const sub = m.subscribe("/tok", { onMessage: (msg) => got.push(msg.data) });
    await until("subscribed", () => sub.state === "open");
    const published = [];
    const end = Date.now() + Number(process.env.TOKEN_SECONDS || 60) * 1000;
    for (let i = 0; Date.now() < end; i++) {
      published.push(await m.publish("/tok/x", i));
      await sleep(500);
    }
    await until("all received", () => got.length === published.length);
    return { published: published.length, got: got.length };
  },

  // Presence and request/reply: a watcher of /agents, two agents that
  // answer with onRequest, one subscriber that never answers. The Go
  // side asks agent 42 itself, then publishes "bye" to /agents/done.
  async agents() {
    const refusal = (err) => ({ name: err.name, code: err.code, status: err.status, topic: err.topic });
    let noResponders = null;
    try {
      await m.request("/agents", { cmd: "uptime" }, { timeout: 2000 });
    } catch (err) {
      noResponders = refusal(err);
    }
    const events = [];
    const messages = [];
    const watcher = m.subscribe("/agents", { onPresence: (ev) => events.push(ev), onMessage: (msg) => messages.push(msg.data) });
    await until("watching", () => watcher.state === "open");
    const agents = connect(url);
    agents.subscribe("/agents/42", { onRequest: async (data, req) => ({ echo: data, topic: req.topic, id: typeof req.id }) });
    const a43 = agents.subscribe("/agents/43", { onRequest: (data) => `up 43: ${data}` });
    const mute = agents.subscribe("/agents/mute/1", { onMessage: () => {} });
    const joined = (t) => events.some((e) => e.event === "join" && e.topic === t);
    await until("agents joined", () => ["/agents/42", "/agents/43", "/agents/mute/1"].every(joined));
    const presence = (await m.presence("/agents")).map((p) => p.topic).sort();
    const one = await m.request("/agents/42", { cmd: "uptime" }, { timeout: "5s" });
    const text = await m.request("/agents/43", "hostname?", { timeout: 5000 });
    let timeout = null;
    try {
      await m.request("/agents/mute", "x", { timeout: 300 });
    } catch (err) {
      timeout = refusal(err);
    }
    const all = await m.request("/agents/4", "all?", { all: true, timeout: "2s" }).catch(refusal);
    const every = await m.request("/agents", "who?", { all: true, timeout: 1000 });
    print({ ready: true });
    await until("bye", () => messages.includes("bye"));
    a43.close();
    await until("agent 43 left", () => events.some((e) => e.event === "leave" && e.topic === "/agents/43"));
    agents.close();
    return { noResponders, events, messages, presence, one, text, timeout, all, every: every.sort((a, b) => a.topic.localeCompare(b.topic)) };
  },

  // An agent's token (rights on /livesys/42 only) goes with requests and
  // presence queries too; what it may not see is refused with 403.
  async agentToken() {
    const refusal = (err) => ({ name: err.name, code: err.code, status: err.status });
    const sub = m.subscribe("/livesys/42", { onRequest: () => "me" });
    await until("subscribed", () => sub.state === "open");
    const answer = await m.request("/livesys/42", "who?", { timeout: 5000 });
    const presence = await m.presence("/livesys/42");
    const otherPresence = await m.presence("/livesys/43").catch(refusal);
    const otherRequest = await m.request("/livesys/43", "x").catch(refusal);
    return { answer, presence, otherPresence, otherRequest };
  },

  // What the broker carried is told apart: text, a JSON string, JSON,
  // bytes.
  async encodings() {
    const got = [];
    const sub = m.subscribe("/enc", {
      onMessage: (msg) => got.push({ data: msg.data instanceof Uint8Array ? [...msg.data] : msg.data, encoding: msg.encoding }),
    });
    await until("subscribed", () => sub.state === "open");
    for (const data of ["plain words", '"quoted"', { n: 1 }, new Uint8Array([0, 255, 1])]) await m.publish("/enc/a", data);
    await until("four messages", () => got.length === 4);
    // A topic whose segments hold what a URL would misread.
    const odd = "/odd/a b?c#d%2F e";
    const oddGot = [];
    const oddSub = m.subscribe(odd, { onMessage: (msg) => oddGot.push(msg.topic) });
    await until("subscribed to the odd topic", () => oddSub.state === "open");
    await m.publish(odd, "x");
    await until("the odd topic's message", () => oddGot.length === 1);
    const oddPresence = (await m.presence(odd)).map((p) => p.topic);
    return { got, oddGot, oddPresence };
  },

  // A page's login and logout: getToken gives what the page holds now;
  // refreshToken after a login brings up a subscription that was refused
  // at once (not after its backoff of a minute), after a logout the
  // client is anonymous again. A handle with onError hears its own
  // errors, the client's onError does not.
  async refresh() {
    let current = "";
    const clientErrors = [];
    const c = connect(url, { getToken: () => current, backoff: { initial: 60_000, max: 60_000 }, onError: (e) => clientErrors.push(e.message) });
    const refusal = (err) => ({ name: err.name, code: err.code, status: err.status });
    const handleErrors = [];
    const got = [];
    const sub = c.subscribe("/livesys/42", { onMessage: (msg) => got.push(msg.data), onError: (e) => handleErrors.push(refusal(e)) });
    await until("refused, waiting to reconnect", () => sub.state === "reconnecting" && handleErrors.length > 0);
    current = arg; // logged in
    const started = Date.now();
    await c.refreshToken();
    await until("subscribed with the token", () => sub.state === "open", 10_000);
    const waited = Date.now() - started;
    await c.publish("/livesys/42", "hello");
    await until("the message", () => got.length === 1);
    const refusals = [];
    const other = c.subscribe("/livesys/43", { onError: (e) => refusals.push(refusal(e)) });
    await until("the other refused", () => other.state === "closed");
    // One POST: accepted with its sequence number, or refused at once.
    const posted = await c.post("pub", "/livesys/42", { n: 2 });
    await until("the posted message", () => got.length === 2);
    const postRefused = await c.post("pub", "/livesys/43", "x").catch(refusal);
    current = ""; // logged out
    await c.refreshToken();
    const after = await c.presence("/livesys/42").catch(refusal);
    c.close();
    return { handleError: handleErrors[0], waited, got, refusals, posted, postRefused, after, clientErrors };
  },

  // getToken keeps giving a token that expires within a second (a page's
  // stored login, say): it is asked again at a reconnection, not in a loop.
  async stale() {
    let calls = 0;
    const c = connect(url, { getToken: () => (calls++, arg), backoff: { initial: 100, max: 1000 } });
    c.subscribe("/livesys/42", { onError: () => {} });
    await sleep(3000);
    c.close();
    return { calls };
  },

  // WebSockets refused on the way: the subscription goes by SSE.
  async sse() {
    const got = [];
    m.subscribe("/sse", { onMessage: (msg) => got.push(msg.data) });
    await until("messages", () => got.length === 3);
    return { got };
  },
};

try {
  const result = await scenarios[scenario]();
  print({ result, states, errors });
} catch (err) {
  print({ fail: String(err.stack || err), states, errors });
}
m.close();
