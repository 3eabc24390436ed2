// A small SVG trend of downsampled history: a min–max band and the average line per bucket.
import { value, when } from './dom.client.js';

const NS = 'http://www.w3.org/2000/svg';
const W = 640;
const H = 160;
const PAD = { l: 56, r: 8, t: 8, b: 22 };

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** Draws buckets `[{ts, min, max, avg, count}]` between `from` and `to` (ms). */
export function trendChart(buckets, from, to) {
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': 'trend' });
  if (buckets.length === 0) {
    root.append(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'chart-empty' }, 'No numeric readings in this hour.'));
    return root;
  }
  let lo = Math.min(...buckets.map((b) => b.min));
  let hi = Math.max(...buckets.map((b) => b.max));
  if (lo === hi) {
    lo -= 1;
    hi += 1;
  }
  const x = (t) => PAD.l + ((t - from) / Math.max(1, to - from)) * (W - PAD.l - PAD.r);
  const y = (v) => PAD.t + (1 - (v - lo) / (hi - lo)) * (H - PAD.t - PAD.b);
  for (const v of [lo, (lo + hi) / 2, hi]) {
    root.append(svg('line', { x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v), class: 'chart-grid' }));
    root.append(svg('text', { x: PAD.l - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'chart-label' }, value(v)));
  }
  root.append(svg('text', { x: PAD.l, y: H - 6, class: 'chart-label' }, when(from).slice(11, 16)));
  root.append(svg('text', { x: W - PAD.r, y: H - 6, 'text-anchor': 'end', class: 'chart-label' }, when(to).slice(11, 16)));
  const band = buckets.map((b) => `${x(b.ts)},${y(b.max)}`).concat([...buckets].reverse().map((b) => `${x(b.ts)},${y(b.min)}`));
  root.append(svg('polygon', { points: band.join(' '), class: 'chart-band' }));
  root.append(svg('polyline', { points: buckets.map((b) => `${x(b.ts)},${y(b.avg)}`).join(' '), class: 'chart-line' }));
  // Dots show buckets even where a line cannot (one bucket, gaps).
  if (buckets.length <= 120) for (const b of buckets) root.append(svg('circle', { cx: x(b.ts), cy: y(b.avg), r: 2.5, class: 'chart-dot' }));
  return root;
}
