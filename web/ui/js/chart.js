// A small line chart in inline SVG: messages in and out per second over
// the last minute. No library: a polyline per series and a scale.
const NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten.
function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

export class RateChart {
  constructor(capacity = 60) {
    this.capacity = capacity;
    this.samples = []; // {in, out}
    this.el = svg('svg', {viewBox: '0 0 600 180', preserveAspectRatio: 'none', role: 'img'});
    this.title = svg('title');
    this.el.append(this.title);
    this.draw();
  }

  push(inRate, outRate) {
    this.samples.push({in: inRate || 0, out: outRate || 0});
    if (this.samples.length > this.capacity) this.samples.shift();
    this.draw();
  }

  draw() {
    const W = 600, H = 180, L = 44, B = 18, T = 8;
    const max = niceMax(Math.max(0, ...this.samples.map((s) => Math.max(s.in, s.out))));
    this.el.replaceChildren(this.title);
    const last = this.samples[this.samples.length - 1];
    this.title.textContent = last
      ? `Messages per second over the last ${this.samples.length} s: now ${last.in.toFixed(1)} in, ${last.out.toFixed(1)} out; scale up to ${max}.`
      : 'Messages per second: no sample yet.';
    for (const f of [0, 0.5, 1]) {
      const y = T + (H - T - B) * (1 - f);
      this.el.append(svg('line', {class: 'axis', x1: L, x2: W, y1: y, y2: y}));
      const label = svg('text', {class: 'label', x: L - 6, y: y + 4, 'text-anchor': 'end'});
      label.textContent = String(Math.round(max * f * 10) / 10);
      this.el.append(label);
    }
    const xl = svg('text', {class: 'label', x: L, y: H - 3});
    xl.textContent = `−${this.capacity} s`;
    const xr = svg('text', {class: 'label', x: W, y: H - 3, 'text-anchor': 'end'});
    xr.textContent = 'now';
    this.el.append(xl, xr);
    const step = (W - L) / (this.capacity - 1);
    const offset = this.capacity - this.samples.length;
    for (const key of ['in', 'out']) {
      const points = this.samples.map((s, i) => {
        const x = L + (offset + i) * step;
        const y = T + (H - T - B) * (1 - s[key] / max);
        return `${x.toFixed(1)},${y.toFixed(1)}`;
      });
      if (points.length) this.el.append(svg('polyline', {class: key, points: points.join(' ')}));
    }
  }
}
