#!/usr/bin/env node
// A third-party WebSocket client (the "ws" package) for Mercury's
// end-to-end tests. It connects to a URL, sends each line of stdin as a
// text frame (a line "binary:<hex>" as a binary frame), and prints one
// JSON object per event on stdout:
//   {"open":true,"protocol":"…"}  {"text":"…"}  {"binary":"<hex>"}
//   {"close":{"code":1000,"reason":"…"}}  {"status":401,"body":"…"}  {"error":"…"}
// Usage: node wsclient.js URL [--origin ORIGIN] [--protocol P] [--count N]
const WebSocket = require('ws');
const readline = require('readline');

const args = process.argv.slice(2);
const url = args.shift();
let origin, protocols = [], count = Infinity;
while (args.length) {
  const flag = args.shift();
  if (flag === '--origin') origin = args.shift();
  else if (flag === '--protocol') protocols.push(args.shift());
  else if (flag === '--count') count = Number(args.shift());
  else { console.error(`unknown flag ${flag}`); process.exit(2); }
}

const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const ws = new WebSocket(url, protocols, origin ? { origin } : {});
let received = 0;

ws.on('open', () => {
  emit({ open: true, protocol: ws.protocol });
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (line.startsWith('binary:')) ws.send(Buffer.from(line.slice(7), 'hex'), { binary: true });
    else ws.send(line);
  });
  rl.on('close', () => { if (count === Infinity) ws.close(1000); });
});
ws.on('message', (data, isBinary) => {
  emit(isBinary ? { binary: data.toString('hex') } : { text: data.toString('utf8') });
  if (++received >= count) ws.close(1000);
});
ws.on('unexpected-response', (req, res) => {
  let body = '';
  res.on('data', (c) => { body += c; });
  res.on('end', () => { emit({ status: res.statusCode, body }); process.exit(0); });
});
ws.on('close', (code, reason) => {
  emit({ close: { code, reason: reason.toString() } });
  process.exit(0);
});
ws.on('error', (err) => { emit({ error: err.message }); });
