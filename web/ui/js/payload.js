// payloadText shows a message's payload: JSON indented, text as it is,
// binary as base64 with its size. It takes a mercury.js message (bytes
// as a Uint8Array) or an envelope as the admin API gives it (bytes still
// base64); both say how the broker carried the payload in "encoding".
export function payloadText(m) {
  if (m.encoding === 'text') return {text: m.data, json: false};
  if (m.encoding === 'base64') {
    const bytes = m.data instanceof Uint8Array;
    const b64 = bytes ? toBase64(m.data) : m.data;
    const n = bytes ? m.data.length : Math.floor((b64.length * 3) / 4) - (b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0);
    return {text: `binary, ${n} bytes (base64):\n${b64}`, json: false};
  }
  return {text: JSON.stringify(m.data, null, 2), json: true};
}

function toBase64(bytes) {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}
