// Charts: for each function with a call in the last hour, calls per minute (and how many failed) and the
// p50/p95 latency of each minute (GET /metrics/functions/timeline), drawn with uPlot (served from
// node_modules at /ui/vendor/uplot.js, loaded when this view is first shown). Charts are made once per
// function and given new data on each refresh.
/* global window, setTimeout, clearTimeout */
import { api } from './api.js';
import { $, h, ms, setChildren } from './dom.js';

const HEIGHT = 170;
const charts = new Map(); // function -> {box, summary, calls, latency, width}
let loading = null;

const lib = () => {
  loading ??= import('./vendor/uplot.js').then((m) => m.default);
  return loading;
};

const zeroBased = (_u, _min, max) => [0, Math.max(1, max ?? 1)];
const count = (_u, v, _s, idx) => (idx === null || idx === undefined ? '—' : String(v ?? 0)); // no bar: 0
// Half a minute of room on each side, so that the first and last minutes' bars are whole.
const padded = (_u, min, max) => [min - 30, max + 30];
// A minute without calls has no bar (a zero-high bar would still draw its outline).
const nonZero = (xs) => xs.map((n) => (n > 0 ? n : null));
const latency = (_u, v) => (v === null || v === undefined ? '—' : ms(v));

const axisMs = (_u, vals) => vals.map((v) => (v === 0 ? '0' : ms(v)));

function options(uPlot, kind, width) {
  const base = {
    width,
    height: HEIGHT,
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true, range: padded }, y: { range: zeroBased } },
  };
  if (kind === 'calls') {
    // Bars, the failed ones drawn over the calls of the same minute (they are some of them).
    const bars = uPlot.paths.bars({ size: [0.7, 24] });
    return {
      ...base,
      axes: [{}, { size: 50 }],
      series: [
        {},
        {
          label: 'calls / min',
          stroke: '#2f6fed',
          fill: 'rgba(47, 111, 237, 0.35)',
          width: 1,
          value: count,
          paths: bars,
          points: { show: false },
        },
        {
          label: 'failed',
          stroke: '#d64545',
          fill: 'rgba(214, 69, 69, 0.6)',
          width: 1,
          value: count,
          paths: bars,
          points: { show: false },
        },
      ],
    };
  }
  // Lines with a dot on each minute that had calls: a lone minute is a dot.
  return {
    ...base,
    axes: [{}, { size: 64, values: axisMs }],
    series: [
      {},
      { label: 'p50', stroke: '#1f9d55', width: 1.5, value: latency, points: { show: true, size: 5, fill: '#1f9d55' } },
      { label: 'p95', stroke: '#c77c02', width: 1.5, value: latency, points: { show: true, size: 5, fill: '#c77c02' } },
    ],
  };
}

// Each chart gets half of the card's width (all of it on a narrow screen).
function chartWidth() {
  const total = $('charts').clientWidth;
  return Math.max(240, total >= 900 ? Math.floor((total - 16) / 2) : total);
}

function fit(c, width) {
  if (!c.calls || c.width === width) return;
  c.width = width;
  c.calls.setSize({ width, height: HEIGHT });
  c.latency.setSize({ width, height: HEIGHT });
}

function make(uPlot, fn, data, width) {
  const callsBox = h('div', { className: 'chart', dataset: { kind: 'calls' } });
  const latencyBox = h('div', { className: 'chart', dataset: { kind: 'latency' } });
  const summary = h('small', {});
  const box = h(
    'div',
    { className: 'chart-card', dataset: { fn } },
    h('h3', {}, fn, ' ', summary),
    h('div', { className: 'chart-pair' }, callsBox, latencyBox),
  );
  $('charts').append(box); // measured and drawn while in the page
  return {
    box,
    summary,
    width,
    calls: new uPlot(options(uPlot, 'calls', width), data.calls, callsBox),
    latency: new uPlot(options(uPlot, 'latency', width), data.latency, latencyBox),
  };
}

export async function refreshCharts() {
  const t = await api('/metrics/functions/timeline');
  const uPlot = await lib().catch(() => null);
  const note = $('charts-note');
  note.textContent = uPlot ? '' : 'the chart library (uPlot) did not load: only the totals of the hour are shown';
  note.hidden = Boolean(uPlot);
  const xs = t.minutes.map((m) => m / 1000);
  const names = Object.keys(t.functions);
  for (const [fn, c] of charts) {
    if (names.includes(fn)) continue;
    c.calls?.destroy();
    c.latency?.destroy();
    c.box.remove();
    charts.delete(fn);
  }
  if (names.length === 0) {
    setChildren($('charts'), h('p', { className: 'hint empty' }, 'no call ended in the last hour'));
    return;
  }
  $('charts').querySelector('.empty')?.remove();
  const width = chartWidth();
  for (const fn of names) {
    const f = t.functions[fn];
    const data = { calls: [xs, nonZero(f.calls), nonZero(f.errors)], latency: [xs, f.p50, f.p95] };
    let c = charts.get(fn);
    if (!c && uPlot) charts.set(fn, (c = make(uPlot, fn, data, width)));
    else if (!c) {
      const summary = h('small', {});
      const box = h('div', { className: 'chart-card', dataset: { fn } }, h('h3', {}, fn, ' ', summary));
      charts.set(fn, (c = { box, summary, width }));
    } else if (c.calls) {
      c.calls.setData(data.calls);
      c.latency.setData(data.latency);
      fit(c, width);
    }
    const total = f.calls.reduce((a, n) => a + n, 0);
    const failed = f.errors.reduce((a, n) => a + n, 0);
    const p95 = f.p95.filter((v) => v !== null);
    c.summary.textContent = `${total} calls · ${failed} failed in the hour${p95.length ? ` · worst minute p95 ${ms(Math.max(...p95))}` : ''}`;
  }
  // In name order (appending moves a chart that is there already).
  for (const fn of names) $('charts').append(charts.get(fn).box);
}

export function initCharts() {
  let timer = 0;
  window.addEventListener('resize', () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if ($('view-charts').hidden) return;
      const width = chartWidth();
      for (const c of charts.values()) fit(c, width);
    }, 150);
  });
}
