// Benchmark report: bench/results/REPORT.md plus SVG charts beside it.
//
//   node bench/report.mjs [--peers FILE] [--scale FILE] [--out DIR]
//
// Reads bench/results/peers.json (scripts/bench.mjs) and bench/results/scale.json
// (bench/scale.mjs), each if present. `writeReport({ peers, scale, outDir })` does
// the same from objects. The charts are plain SVG written here, deterministic for
// the same input (no dates, no random ids, coordinates rounded).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, platform, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scaleMarkdown } from './scale.mjs';
import { writesMarkdown, writesNote } from './writes.mjs';

const SELF = fileURLToPath(import.meta.url);
const RESULTS = join(dirname(SELF), 'results');

// ---- names, colours, formatting -------------------------------------------------

const RUNTIME_NAMES = { layerbox: 'layerbox', 'node-wasi': 'node:wasi', shim: 'browser_wasi_shim', wasmer: '@wasmer/wasi' };
const RUNTIME_ORDER = ['layerbox', 'node-wasi', 'shim', 'wasmer'];
// Okabe-Ito: tells apart with the common colour-vision deficiencies.
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#000000'];
const GROUP_TITLES = { syscalls: 'System-call workloads', programs: 'Real programs' };

const runtimeName = (k) => RUNTIME_NAMES[k] ?? k;
const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif";

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const mdEsc = (s) => String(s).replace(/</g, '&lt;').replace(/\|/g, '\\|').replace(/\n/g, ' ');
/** Coordinates with one decimal at most, so the same input gives the same bytes. */
const c = (x) => String(Math.round(x * 10) / 10);

function fmtMs(ms) {
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

function fmtBytes(b) {
  if (b >= 1e9) return `${(b / 1e9).toFixed(2)} GB`;
  if (b >= 1e6) return `${(b / 1e6).toFixed(b >= 1e8 ? 0 : 2)} MB`;
  if (b >= 1e3) return `${(b / 1e3).toFixed(b >= 1e5 ? 0 : 1)} kB`;
  return `${b} B`;
}

/** Axis ticks: round numbers without padding digits (1 ms, 10 ms, 1 s; 1 kB, 10 kB). */
const trim = (x) => String(Math.round(x * 1000) / 1000);
const tickMs = (v) => (v >= 1000 ? `${trim(v / 1000)} s` : `${trim(v)} ms`);
const tickBytes = (v) => (v >= 1e9 ? `${trim(v / 1e9)} GB` : v >= 1e6 ? `${trim(v / 1e6)} MB` : v >= 1e3 ? `${trim(v / 1e3)} kB` : `${trim(v)} B`);

const fmtRatio = (r) => `${r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;
const fmtCount = (n) => (n >= 1000 && n % 1000 === 0 ? `${n / 1000}k` : String(n));

/** A result cell: { ms }, { error }, a bare number of ms, or missing. */
function cell(v) {
  if (v === undefined || v === null) return { missing: true };
  if (typeof v === 'number') return Number.isFinite(v) ? { ms: v } : { error: 'not a number' };
  if (typeof v.ms === 'number' && Number.isFinite(v.ms)) return { ms: v.ms };
  if (v.error) return { error: String(v.error) };
  if (v.skipped) return { error: `skipped: ${v.skipped}` };
  return { error: 'no result' };
}

const showCell = (v) => (v.ms !== undefined ? fmtMs(v.ms) : v.missing ? '—' : `error: ${mdEsc(v.error.length > 60 ? v.error.slice(0, 57) + '...' : v.error)}`);
const ratioOf = (a, b) => (a.ms !== undefined && b.ms !== undefined && b.ms > 0 ? a.ms / b.ms : null);

function truncate(s, n) {
  return s.length > n ? s.slice(0, n - 1) + '…' : s;
}

/** Rough text width for layout (12 px sans-serif averages a little under 7 px a character). */
const textW = (s, size = 12) => s.length * size * 0.6;
/** Shortened with an ellipsis to fit about `w` pixels. */
const fit = (s, w, size = 12) => truncate(s, Math.max(8, Math.floor(w / (size * 0.6))));

function niceStep(range, target = 5) {
  const raw = range / target;
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/** Ticks of a linear axis from 0 to at least `max`. */
function linearTicks(max) {
  if (!(max > 0)) return { hi: 1, ticks: [0, 0.5, 1] };
  const step = niceStep(max);
  const hi = Math.ceil(max / step - 1e-9) * step;
  const ticks = [];
  for (let v = 0; v <= hi + step / 2; v += step) ticks.push(Math.round(v / step) * step);
  return { hi, ticks };
}

/** Decades covering [min, max] for a log axis. */
function logDomain(min, max) {
  let lo = 10 ** Math.floor(Math.log10(min) - 0.3);
  let hi = 10 ** Math.ceil(Math.log10(max));
  if (hi <= lo) hi = lo * 10;
  return { lo, hi };
}

function tickNumber(v) {
  if (v >= 1e6 && v % 1e6 === 0) return `${v / 1e6}M`;
  if (v >= 1e3 && v % 1e3 === 0) return `${v / 1e3}k`;
  return String(Math.round(v * 1000) / 1000);
}

// ---- SVG building blocks ------------------------------------------------------------

function svgDoc(width, height, body, title) {
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${c(width)}" height="${c(height)}" viewBox="0 0 ${c(width)} ${c(height)}" font-family="${esc(FONT)}" font-size="12" role="img" aria-label="${esc(title)}">`,
    `<title>${esc(title)}</title>`,
    `<rect x="0" y="0" width="${c(width)}" height="${c(height)}" fill="#ffffff"/>`,
    ...body,
    `</svg>`,
    '',
  ].join('\n');
}

const text = (x, y, s, attrs = '') => `<text x="${c(x)}" y="${c(y)}"${attrs ? ' ' + attrs : ''}>${esc(s)}</text>`;
const line = (x1, y1, x2, y2, attrs) => `<line x1="${c(x1)}" y1="${c(y1)}" x2="${c(x2)}" y2="${c(y2)}" ${attrs}/>`;

/** Point markers that stay visible when series coincide: a hollow circle, then a square, a diamond, a triangle. */
function marker(shape, x, y, color) {
  switch (shape % 4) {
    case 0: return `<circle cx="${c(x)}" cy="${c(y)}" r="4.5" fill="#ffffff" stroke="${color}" stroke-width="2"/>`;
    case 1: return `<rect x="${c(x - 3)}" y="${c(y - 3)}" width="6" height="6" fill="${color}"/>`;
    case 2: return `<path d="M${c(x)} ${c(y - 4)} L${c(x + 4)} ${c(y)} L${c(x)} ${c(y + 4)} L${c(x - 4)} ${c(y)} Z" fill="${color}"/>`;
    default: return `<path d="M${c(x)} ${c(y - 4)} L${c(x + 4)} ${c(y + 3)} L${c(x - 4)} ${c(y + 3)} Z" fill="${color}"/>`;
  }
}

/** A row of legend entries (swatch + name); returns the elements and the height used. */
function legend(x, y, items, maxWidth) {
  const out = [];
  let cx = x, cy = y;
  for (const it of items) {
    const sw = it.kind === 'line' ? 26 : 12;
    const w = sw + 6 + textW(it.name) + 18;
    if (cx + w > x + maxWidth && cx > x) {
      cx = x;
      cy += 18;
    }
    if (it.kind === 'line') {
      out.push(line(cx, cy - 4, cx + sw, cy - 4, `stroke="${it.color}" stroke-width="2"${it.dash ? ' stroke-dasharray="5 3"' : ''}`));
      out.push(marker(it.shape ?? 0, cx + sw / 2, cy - 4, it.color));
    } else out.push(`<rect x="${c(cx)}" y="${c(cy - 10)}" width="12" height="12" rx="2" fill="${it.color}"/>`);
    out.push(text(cx + sw + 6, cy, it.name, 'fill="#333333"'));
    cx += w;
  }
  return { out, height: cy - y + 18 };
}

/**
 * Grouped horizontal bars: one group per workload, one bar per series.
 * `scale`: 'log' (times of very different sizes) or 'linear' (from 0).
 * groups: [{ label, sublabel?, bars: [{ key, value?, error?, note? }] }]
 */
export function barChartSvg({ title, subtitle, series, groups, scale = 'log', format = fmtMs, tickFormat = scale === 'log' ? tickMs : format, axisLabel, width = 900 }) {
  const values = groups.flatMap((g) => g.bars.map((b) => b.value)).filter((v) => typeof v === 'number' && v > 0);
  const LABEL_MAX = 340;
  const labelW = Math.min(LABEL_MAX, Math.max(120, ...groups.map((g) => textW(g.label) + 12), ...groups.map((g) => (g.sublabel ? textW(g.sublabel, 10.5) + 12 : 0))));
  const barText = (b) => (typeof b.value === 'number' && b.value > 0 ? format(b.value) + (b.note ? `  ${b.note}` : '') : '');
  const left = labelW + 14, right = Math.max(60, ...groups.flatMap((g) => g.bars.map((b) => textW(barText(b), 11) + 14)));
  const plotW = width - left - right;
  const barH = 14, barGap = 3, groupGap = 18;
  const body = [];
  body.push(text(16, 24, title, 'font-size="16" font-weight="600" fill="#111111"'));
  let y = 44;
  if (subtitle) {
    body.push(text(16, y, subtitle, 'font-size="12" fill="#555555"'));
    y += 20;
  }
  const lg = legend(16, y + 4, series.map((s) => ({ name: s.name, color: s.color })), width - 32);
  body.push(...lg.out);
  y += lg.height + 10;
  const top = y;
  const perGroup = series.length * (barH + barGap) - barGap;
  const plotH = groups.length * (perGroup + groupGap) - groupGap;
  const bottom = top + plotH;

  let xOf, ticks;
  if (scale === 'log') {
    const { lo, hi } = values.length ? logDomain(Math.min(...values), Math.max(...values)) : { lo: 1, hi: 10 };
    const L = Math.log10(lo), H = Math.log10(hi);
    xOf = (v) => left + ((Math.log10(Math.max(v, lo)) - L) / (H - L)) * plotW;
    ticks = [];
    for (let d = L; d <= H + 1e-9; d++) {
      const v = 10 ** d;
      ticks.push({ v: Math.round(v * 1e6) / 1e6, major: true });
      if (d < H - 1e-9) for (const m of [2, 5]) ticks.push({ v: m * v, major: false });
    }
  } else {
    const t = linearTicks(values.length ? Math.max(...values) : 1);
    xOf = (v) => left + (v / t.hi) * plotW;
    ticks = t.ticks.map((v) => ({ v, major: true }));
  }
  // Alternate bands behind the groups, then the grid and axis labels.
  groups.forEach((g, gi) => {
    const gy = top + gi * (perGroup + groupGap);
    if (gi % 2 === 1) body.push(`<rect x="${c(8)}" y="${c(gy - groupGap / 2 + 1)}" width="${c(width - 16)}" height="${c(perGroup + groupGap - 2)}" fill="#f5f5f5"/>`);
  });
  for (const t of ticks) {
    const x = xOf(t.v);
    body.push(line(x, top - 4, x, bottom + 4, `stroke="${t.major ? '#d0d0d0' : '#ececec'}" stroke-width="1"`));
    if (t.major) body.push(text(x, bottom + 18, tickFormat(t.v), 'text-anchor="middle" fill="#555555" font-size="11"'));
  }
  body.push(line(left, top - 4, left, bottom + 4, 'stroke="#888888" stroke-width="1"'));
  if (axisLabel) body.push(text(left + plotW / 2, bottom + 36, axisLabel, 'text-anchor="middle" fill="#333333"'));

  groups.forEach((g, gi) => {
    const gy = top + gi * (perGroup + groupGap);
    const mid = gy + perGroup / 2;
    const lab = fit(g.label, labelW - 12);
    const labAttrs = 'text-anchor="end" fill="#111111"';
    if (g.sublabel) {
      body.push(`<g>${lab !== g.label ? `<title>${esc(g.label)}</title>` : ''}${text(left - 10, mid - 2, lab, labAttrs)}</g>`);
      body.push(`<g><title>${esc(g.sublabel)}</title>${text(left - 10, mid + 12, fit(g.sublabel, labelW - 12, 10.5), 'text-anchor="end" fill="#666666" font-size="10.5"')}</g>`);
    } else body.push(`<g>${lab !== g.label ? `<title>${esc(g.label)}</title>` : ''}${text(left - 10, mid + 4, lab, labAttrs)}</g>`);
    series.forEach((s, si) => {
      const b = g.bars.find((x) => x.key === s.key);
      const by = gy + si * (barH + barGap);
      if (!b) return;
      if (typeof b.value === 'number' && b.value > 0) {
        const x1 = xOf(b.value);
        const tip = `${s.name}: ${format(b.value)}${b.note ? ` (${b.note})` : ''}`;
        body.push(`<g><title>${esc(tip)}</title><rect x="${c(left)}" y="${c(by)}" width="${c(Math.max(1, x1 - left))}" height="${barH}" fill="${s.color}"/></g>`);
        body.push(text(x1 + 5, by + barH - 3, barText(b), 'fill="#222222" font-size="11" xml:space="preserve"'));
      } else if (b.error !== undefined || b.value !== undefined) {
        body.push(`<g><title>${esc(`${s.name}: ${b.error ?? 'no value'}`)}</title>${text(left + 6, by + barH - 3, `${s.name}: ${truncate(b.error ?? 'no value', 70)}`, 'fill="#b00020" font-style="italic" font-size="11"')}</g>`);
      }
    });
  });
  const height = bottom + (axisLabel ? 50 : 30);
  return svgDoc(width, height, body, title);
}

/**
 * Side-by-side line-chart panels sharing one title.
 * panels: [{ title, xLabel, yLabel, xLog?, yLog?, xFormat?, yFormat?, series: [{ name, color, dash?, points: [[x, y]] }] }]
 */
export function lineChartSvg({ title, subtitle, panels, panelW = 440, panelH = 300 }) {
  const gap = 30, margin = 16;
  const width = margin * 2 + panels.length * panelW + (panels.length - 1) * gap;
  const body = [];
  body.push(text(margin, 24, title, 'font-size="16" font-weight="600" fill="#111111"'));
  let top = 36;
  if (subtitle) {
    body.push(text(margin, 44, subtitle, 'font-size="12" fill="#555555"'));
    top = 56;
  }
  let maxH = 0;
  panels.forEach((p, pi) => {
    const ox = margin + pi * (panelW + gap);
    const out = [];
    out.push(text(ox, top + 16, p.title, 'font-size="13" font-weight="600" fill="#222222"'));
    const lg = legend(ox, top + 36, p.series.map((s, si) => ({ name: s.name, color: s.color, kind: 'line', dash: s.dash, shape: si })), panelW);
    out.push(...lg.out);
    const valueFormat = p.valueFormat ?? p.yFormat ?? tickNumber;
    const lastOf = (s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!p.yLog || y > 0)).at(-1);
    const labelW = p.labelLast ? Math.max(0, ...p.series.map((s) => (lastOf(s) ? textW(valueFormat(lastOf(s)[1]), 10.5) : 0))) : 0;
    const plotTop = top + 36 + lg.height + 6;
    const left = ox + 62, right = ox + panelW - Math.max(14, labelW + 14), bottom = plotTop + panelH - 60;
    const pts = p.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    const xs = pts.map(([x]) => x), ys = pts.map(([, y]) => y);
    const xFormat = p.xFormat ?? tickNumber, yFormat = p.yFormat ?? tickNumber;
    // x axis
    let xOf, xTicks;
    if (p.xLog) {
      const lo = 10 ** Math.floor(Math.log10(Math.min(...xs))), hi = 10 ** Math.ceil(Math.log10(Math.max(...xs)));
      const L = Math.log10(lo), H = Math.log10(hi === lo ? hi * 10 : hi);
      xOf = (x) => left + ((Math.log10(x) - L) / (H - L)) * (right - left);
      xTicks = [];
      for (let d = L; d <= H + 1e-9; d++) xTicks.push(Math.round(10 ** d));
    } else {
      const t = linearTicks(Math.max(...xs));
      xOf = (x) => left + (x / t.hi) * (right - left);
      xTicks = t.ticks;
    }
    // y axis
    let yOf, yTicks, minor = [];
    if (p.yLog) {
      const pos = ys.filter((y) => y > 0);
      const lo = 10 ** Math.floor(Math.log10(Math.min(...pos))), hi0 = 10 ** Math.ceil(Math.log10(Math.max(...pos)));
      const hi = hi0 === lo ? hi0 * 10 : hi0;
      const L = Math.log10(lo), H = Math.log10(hi);
      yOf = (y) => bottom - ((Math.log10(Math.max(y, lo)) - L) / (H - L)) * (bottom - plotTop);
      yTicks = [];
      for (let d = L; d <= H + 1e-9; d++) {
        yTicks.push(Math.round(10 ** d));
        if (d < H - 1e-9) minor.push(2 * 10 ** d, 5 * 10 ** d);
      }
    } else {
      const t = linearTicks(Math.max(...ys));
      yOf = (y) => bottom - (y / t.hi) * (bottom - plotTop);
      yTicks = t.ticks;
    }
    for (const v of minor) out.push(line(left, yOf(v), right, yOf(v), 'stroke="#f0f0f0" stroke-width="1"'));
    for (const v of yTicks) {
      out.push(line(left, yOf(v), right, yOf(v), 'stroke="#dddddd" stroke-width="1"'));
      out.push(text(left - 6, yOf(v) + 4, yFormat(v), 'text-anchor="end" fill="#555555" font-size="11"'));
    }
    for (const v of xTicks) {
      out.push(line(xOf(v), bottom, xOf(v), bottom + 4, 'stroke="#888888" stroke-width="1"'));
      out.push(text(xOf(v), bottom + 17, xFormat(v), 'text-anchor="middle" fill="#555555" font-size="11"'));
    }
    out.push(line(left, plotTop, left, bottom, 'stroke="#888888" stroke-width="1"'));
    out.push(line(left, bottom, right, bottom, 'stroke="#888888" stroke-width="1"'));
    out.push(text((left + right) / 2, bottom + 36, p.xLabel, 'text-anchor="middle" fill="#333333"'));
    const ly = (plotTop + bottom) / 2;
    out.push(`<text x="${c(ox + 14)}" y="${c(ly)}" transform="rotate(-90 ${c(ox + 14)} ${c(ly)})" text-anchor="middle" fill="#333333">${esc(p.yLabel)}</text>`);
    const labels = [];
    p.series.forEach((s, si) => {
      const sp = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!p.yLog || y > 0));
      if (!sp.length) return;
      const d = sp.map(([x, y], i) => `${i ? 'L' : 'M'}${c(xOf(x))} ${c(yOf(y))}`).join(' ');
      out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ' stroke-dasharray="5 3"' : ''}/>`);
      for (const [x, y] of sp) out.push(`<g><title>${esc(`${s.name}: ${xFormat(x)}: ${valueFormat(y)}`)}</title>${marker(si, xOf(x), yOf(y), s.color)}</g>`);
      const [lx, lyv] = sp.at(-1);
      labels.push({ x: xOf(lx) + 8, y: yOf(lyv) + 4, s: valueFormat(lyv), color: s.color });
    });
    if (p.labelLast) {
      // The last value of each series at the right end, pushed apart so none overlap.
      labels.sort((a, b) => a.y - b.y || a.s.localeCompare(b.s));
      for (let i = 1; i < labels.length; i++) if (labels[i].y - labels[i - 1].y < 12) labels[i].y = labels[i - 1].y + 12;
      for (const l of labels) out.push(text(l.x, l.y, l.s, `fill="${l.color}" font-size="10.5"`));
    }
    maxH = Math.max(maxH, bottom + 46 - top);
    body.push(`<g>`, ...out, `</g>`);
  });
  return svgDoc(width, top + maxH + 8, body, title);
}

// ---- the report ---------------------------------------------------------------------------

function machine() {
  const cs = cpus();
  return { cpu: cs[0]?.model?.trim() ?? 'unknown', cpus: cs.length, memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10, os: `${platform()} ${release()}`, node: process.version };
}

function peerKeys(rows) {
  const seen = new Set();
  for (const r of rows) for (const k of Object.keys(r.results ?? {})) if (k !== 'layerbox') seen.add(k);
  return [...RUNTIME_ORDER.filter((k) => seen.has(k) && k !== 'layerbox'), ...[...seen].filter((k) => !RUNTIME_ORDER.includes(k)).sort()];
}

function ociRows(oci) {
  if (!oci) return [];
  const rows = Array.isArray(oci) ? oci : oci.rows ?? [];
  return rows.map((r) => ({ label: r.label, layerbox: cell(r.layerbox), peer: cell(r.peer), peerName: r.peerName ?? 'peer' }));
}

/**
 * Why layerbox can be slower than a peer on a row: what was profiled and
 * what the peer's number does or does not include. Keyed by workload label
 * (prefix) and peer; `*` for any peer.
 */
const WHY = [
  ['100 MiB sequential read, second pass', '*', 'Once its chunks are checked, a read goes from the pack file straight into guest memory, one read per run of chunks stored side by side: the same work as node:wasi. What remains is run-to-run noise and the per-chunk lookup.'],
  ['100 MiB sequential read', '*', 'A first read checks every 64 KiB chunk against its sha256 (the store verifies each blob the first time a process reads it); profiled, that hash is about 70 ms of these 100 MiB on this machine (about 1.5 GB/s with SHA-NI), and the rest is the read itself, straight into guest memory. No peer checks anything: node:wasi reads the host page cache, browser_wasi_shim and @wasmer/wasi read bytes already in memory. The second-pass row shows the read path without the check.'],
  ['stat+open+close', 'shim', 'browser_wasi_shim is a single in-memory tree: a lookup is one Map get per name. layerbox resolves each name through the upper and the image layers (whiteouts, opaque directories, redirects), with rights checks, stable inode numbers and nanosecond times; against node:wasi on a real directory, the peer it must match, it is faster or level.'],
  ['stat+open+close', 'wasmer', '@wasmer/wasi keeps its MemFS inside its own wasm module, with no layers; its clock ticks in whole milliseconds. layerbox resolves through the layers of the box; it is level with node:wasi, the peer it must match.'],
  ['stat+open+close', 'node-wasi', 'Profiled: path resolution through the layers (one small object per path component). Within noise of node:wasi when the machine is quiet; the row is CPU-bound and moves with the load of the machine.'],
  ['create 2k small files', '*', 'Creating a file in a box adds an upper entry with an inode number, nanosecond times and the quota counters, and copies the parent directory up (metadata only) the first time; browser_wasi_shim and @wasmer/wasi only add a Map entry in memory. The files stay in memory until a flush: the flush to the directory store is not in this time.'],
  ['Ruby', '*', 'Mostly compiling and starting the Ruby VM (a 16 MB module), the same CPU work in every runtime, which moved by a third between runs on this machine. The file system is a small part: the run makes about 2,800 WASI calls (path_open, fd_fdstat_get, path_filestat_get, fd_read; about 430 of them probe paths that do not exist). Measured in one process once the VM code was compiled, a second VM start took 256 ms under layerbox and 284 ms under node:wasi, and the twelve requires 271 ms and 210 ms.'],
  ['SQLite', 'node-wasi', 'Level within run-to-run noise: over three full runs of this benchmark on this machine layerbox took 169 to 281 ms and node:wasi 197 to 301 ms, layerbox ahead in two of them. SQLite writes its database and journal into the box upper, in memory until the flush after the run (not in this time, printed under the table).'],
  ['SQLite', '*', 'SQLite writes its database and journal into the box upper (in memory until a flush), with an inode, nanosecond times and quota counters kept for each change; a peer in memory only updates its buffers.'],
  ['image -> OCI archive', 'oci', 'Not comparable: `skopeo copy` only copies an already built, already compressed layer blob, while layerbox builds the layer tar from its tables and gzips it (deterministically) on the way out.'],
];

function explain(workload, peer) {
  const hit = WHY.find(([w, p]) => workload.startsWith(w) && (p === '*' || p === peer));
  return hit ? hit[2] : '';
}

/** Writes REPORT.md and its SVG charts into `outDir`; returns the files written. */
export function writeReport({ peers = null, scale = null, outDir = RESULTS } = {}) {
  mkdirSync(outDir, { recursive: true });
  const files = [];
  const put = (name, data) => {
    writeFileSync(join(outDir, name), data);
    files.push(join(outDir, name));
  };
  const md = [];
  const notes = [];
  const m = machine();
  md.push('# layerbox benchmarks', '');
  const sources = [];
  if (peers) sources.push(`peer comparison: ${peers.date ?? 'date unknown'}${peers.node ? ` (Node ${peers.node})` : ''}`);
  if (scale) sources.push(`scale: ${scale.date ?? 'date unknown'}${scale.node ? ` (Node ${scale.node})` : ''}${scale.quick ? ', quick mode (smaller sizes)' : ''}`);
  md.push(`Results measured on: ${sources.length ? sources.join('; ') : 'no results found'}.`, '');
  md.push('| machine | |', '| --- | --- |');
  md.push(`| CPU | ${mdEsc(m.cpu)} |`, `| CPUs | ${m.cpus} |`, `| memory | ${m.memoryGiB} GiB |`, `| OS | ${mdEsc(m.os)} |`, `| Node (report) | ${m.node} |`);
  md.push('');

  // ---- peers ----
  md.push('## layerbox and its peers', '');
  if (!peers) md.push('No peer results: run `npm run bench` to produce bench/results/peers.json.', '');
  else {
    const rows = peers.rows ?? [];
    const keys = peerKeys(rows);
    md.push(`Best of ${peers.reps ?? '?'} run(s) each, every run in its own process (scripts/bench.mjs says how each workload is timed). Ratio = layerbox / peer: below 1 means layerbox is faster.`, '');
    const groups = [...new Set(rows.map((r) => r.group ?? 'other'))];
    const colors = Object.fromEntries(['layerbox', ...keys].map((k, i) => [k, PALETTE[i % PALETTE.length]]));
    for (const g of groups) {
      const gr = rows.filter((r) => (r.group ?? 'other') === g);
      md.push(`### ${GROUP_TITLES[g] ?? g}`, '');
      md.push(`| workload | layerbox | ${keys.map((k) => runtimeName(k)).join(' | ')} | ${keys.map((k) => `layerbox / ${runtimeName(k)}`).join(' | ')} |`);
      md.push(`| --- | ---: | ${keys.map(() => '---:').join(' | ')} | ${keys.map(() => '---:').join(' | ')} |`);
      for (const r of gr) {
        const lb = cell(r.results?.layerbox);
        const peersCells = keys.map((k) => cell(r.results?.[k]));
        const ratios = peersCells.map((p) => ratioOf(lb, p));
        md.push(`| ${mdEsc(r.workload)} | ${showCell(lb)} | ${peersCells.map(showCell).join(' | ')} | ${ratios.map((x) => (x === null ? 'n/a' : x > 1 ? `**${fmtRatio(x)}**` : fmtRatio(x))).join(' | ')} |`);
        ratios.forEach((x, i) => {
          if (x !== null && x > 1) notes.push({ text: `${GROUP_TITLES[g] ?? g} / ${r.workload}: layerbox ${fmtMs(lb.ms)} vs ${runtimeName(keys[i])} ${fmtMs(peersCells[i].ms)}, ratio ${fmtRatio(x)}`, why: explain(r.workload, keys[i]) });
        });
        if (lb.error) notes.push({ text: `${GROUP_TITLES[g] ?? g} / ${r.workload}: layerbox failed: ${lb.error}` });
      }
      md.push('');
      // Peak RSS of each program's process, where the run recorded it.
      if (gr.some((r) => Object.values(r.results ?? {}).some((v) => v?.rssKiB))) {
        const rss = (v) => (v && !v.error && v.rssKiB ? v.rssKiB * 1024 : null);
        md.push(`| peak RSS | layerbox | ${keys.map((k) => runtimeName(k)).join(' | ')} | ${keys.map((k) => `layerbox / ${runtimeName(k)}`).join(' | ')} |`);
        md.push(`| --- | ---: | ${keys.map(() => '---:').join(' | ')} | ${keys.map(() => '---:').join(' | ')} |`);
        for (const r of gr) {
          const lb = rss(r.results?.layerbox);
          const ps = keys.map((k) => rss(r.results?.[k]));
          const show = (b) => (b === null ? '—' : fmtBytes(b));
          const rt = (p) => (lb === null || p === null ? 'n/a' : lb / p > 1 ? `**${fmtRatio(lb / p)}**` : fmtRatio(lb / p));
          md.push(`| ${mdEsc(r.workload)} | ${show(lb)} | ${ps.map(show).join(' | ')} | ${ps.map(rt).join(' | ')} |`);
        }
        md.push('', 'Peak RSS of the process that ran the program (`process.resourceUsage().maxRSS` at its end), in its best-time run.', '');
      }
      const svgName = `peers-${String(g).replace(/[^a-z0-9]+/gi, '-').toLowerCase()}.svg`;
      put(svgName, barChartSvg({
        title: `${GROUP_TITLES[g] ?? g}: time per workload`,
        subtitle: `best of ${peers.reps ?? '?'} run(s); log scale, shorter is faster; beside a peer's time: layerbox time / peer time`,
        series: ['layerbox', ...keys].map((k) => ({ key: k, name: runtimeName(k), color: colors[k] })),
        groups: gr.map((r) => ({
          label: r.workload,
          bars: ['layerbox', ...keys].map((k) => {
            const v = cell(r.results?.[k]);
            if (v.missing) return { key: k };
            if (v.error !== undefined) return { key: k, error: v.error };
            const ratio = k === 'layerbox' ? null : ratioOf(cell(r.results?.layerbox), v);
            return { key: k, value: v.ms, note: ratio === null ? undefined : `layerbox ${fmtRatio(ratio)}` };
          }),
        })),
        axisLabel: 'time (log scale)',
      }));
      md.push(`![${GROUP_TITLES[g] ?? g}](${svgName})`, '');
    }

    md.push('### Write path (whole commands)', '');
    if (!Array.isArray(peers.writes)) md.push(peers.writes?.skipped ? `Skipped: ${mdEsc(peers.writes.skipped)}.` : 'No write-path results in this run.', '');
    else {
      md.push(writesMarkdown(peers.writes, { esc: mdEsc }), '', writesNote, '');
      put('peers-writes-rss.svg', barChartSvg({
        title: 'Write path: peak RSS of the process running the guest',
        subtitle: 'log scale, shorter is less memory; beside node:wasi: layerbox RSS / node:wasi RSS',
        series: [{ key: 'layerbox', name: 'layerbox (CLI)', color: PALETTE[0] }, { key: 'node-wasi', name: 'node:wasi', color: PALETTE[1] }],
        groups: peers.writes.map((r) => ({
          label: r.label,
          bars: [
            r.layerbox.error ? { key: 'layerbox', error: r.layerbox.error } : { key: 'layerbox', value: r.layerbox.rssKiB * 1024 },
            r.peer.error ? { key: 'node-wasi', error: r.peer.error } : { key: 'node-wasi', value: r.peer.rssKiB * 1024, note: r.layerbox.error ? undefined : `layerbox ${fmtRatio(r.layerbox.rssKiB / r.peer.rssKiB)}` },
          ],
        })),
        format: fmtBytes,
        tickFormat: tickBytes,
        axisLabel: 'peak RSS (log scale)',
      }));
      md.push('![Write path: peak RSS](peers-writes-rss.svg)', '');
    }

    const oci = ociRows(peers.oci);
    md.push('### OCI image work (whole commands)', '');
    if (!oci.length) md.push(peers.oci?.skipped ? `Skipped: ${mdEsc(peers.oci.skipped)}.` : 'No OCI results in this run.', '');
    else {
      md.push('| workload | layerbox | peer | peer tool | layerbox / peer |', '| --- | ---: | ---: | --- | ---: |');
      for (const r of oci) {
        const x = ratioOf(r.layerbox, r.peer);
        md.push(`| ${mdEsc(r.label)} | ${showCell(r.layerbox)} | ${showCell(r.peer)} | ${mdEsc(r.peerName)} | ${x === null ? 'n/a' : x > 1 ? `**${fmtRatio(x)}**` : fmtRatio(x)} |`);
        if (x !== null && x > 1) notes.push({ text: `OCI / ${r.label}: layerbox ${fmtMs(r.layerbox.ms)} vs ${r.peerName} ${fmtMs(r.peer.ms)}, ratio ${fmtRatio(x)}`, why: explain(r.label, 'oci') });
        if (r.layerbox.error) notes.push({ text: `OCI / ${r.label}: layerbox failed: ${r.layerbox.error}` });
      }
      md.push('');
      put('peers-oci.svg', barChartSvg({
        title: 'OCI image work: time per command',
        subtitle: 'log scale, shorter is faster; the peer tool is named under each workload; beside its time: layerbox time / peer time',
        series: [{ key: 'layerbox', name: 'layerbox (CLI)', color: PALETTE[0] }, { key: 'peer', name: 'peer tool', color: PALETTE[5] }],
        groups: oci.map((r) => ({
          label: r.label,
          sublabel: `vs ${r.peerName}`,
          bars: [
            r.layerbox.ms !== undefined ? { key: 'layerbox', value: r.layerbox.ms } : { key: 'layerbox', error: r.layerbox.error ?? 'missing' },
            r.peer.ms !== undefined ? { key: 'peer', value: r.peer.ms, note: ratioOf(r.layerbox, r.peer) === null ? undefined : `layerbox ${fmtRatio(ratioOf(r.layerbox, r.peer))}` } : { key: 'peer', error: r.peer.error ?? 'missing' },
          ],
        })),
        axisLabel: 'time (log scale)',
      }));
      md.push('![OCI image work](peers-oci.svg)', '');
    }
  }

  // ---- scale ----
  md.push('## Scale: mount, commit, many boxes', '');
  if (!scale) md.push('No scale results: run `node bench/scale.mjs` to produce bench/results/scale.json.', '');
  else {
    // The scale tables, each followed by its chart.
    const sections = scaleMarkdown(scale).split(/\n(?=### )/);
    const charts = {};
    const mount = scale.mount ?? [];
    if (mount.length) {
      const memSeries = [
        { name: 'heap + external', color: PALETTE[0], points: mount.map((r) => [r.files, r.heapMiB]) },
        ...(mount.every((r) => r.storeHeapMiB !== undefined) ? [
          { name: 'of it: store index', color: PALETTE[1], dash: true, points: mount.map((r) => [r.files, r.storeHeapMiB]) },
          { name: 'of it: box', color: PALETTE[2], dash: true, points: mount.map((r) => [r.files, r.boxHeapMiB]) },
        ] : []),
        { name: 'RSS', color: PALETTE[3], points: mount.map((r) => [r.files, r.rssMiB]) },
      ];
      const timeSeries = [
        { name: 'total', color: PALETTE[0], points: mount.map((r) => [r.files, r.ms]) },
        ...(mount.every((r) => r.storeOpenMs !== undefined) ? [
          { name: 'store open', color: PALETTE[1], dash: true, points: mount.map((r) => [r.files, r.storeOpenMs]) },
          { name: 'box open + first access', color: PALETTE[2], dash: true, points: mount.map((r) => [r.files, r.boxOpenMs + r.firstAccessMs]) },
        ] : []),
      ];
      put('scale-mount.svg', lineChartSvg({
        title: 'Mount: time and memory vs image size',
        subtitle: 'open the store, open a box over the image, stat and read one deep file; fresh process, best of runs',
        panels: [
          { title: 'Time', xLabel: 'files in the image (log scale)', yLabel: 'ms', xLog: true, series: timeSeries, labelLast: true, valueFormat: (v) => `${Math.round(v * 10) / 10} ms` },
          { title: 'Memory after gc (delta)', xLabel: 'files in the image (log scale)', yLabel: 'MiB', xLog: true, series: memSeries, labelLast: true, valueFormat: (v) => `${Math.round(v * 100) / 100} MiB` },
        ],
      }));
      charts.Mount = '![Mount time and memory vs image size](scale-mount.svg)';
    }
    const commit = scale.commit ?? [];
    if (commit.length) {
      const images = [...new Set(commit.map((r) => r.imageFiles))].sort((a, b) => a - b);
      const col = (i) => PALETTE[(i * 2) % PALETTE.length];
      put('scale-commit.svg', lineChartSvg({
        title: 'Commit: time and bytes vs number of changed files',
        subtitle: 'box flushed first; commit time is box.commit() alone; bytes = growth of the store directory',
        panels: [
          { title: 'Commit time', xLabel: 'changed files (log scale)', yLabel: 'ms', xLog: true, labelLast: true, valueFormat: (v) => `${Math.round(v * 10) / 10} ms`, series: images.map((n, i) => ({ name: `image of ${fmtCount(n)} files`, color: col(i), points: commit.filter((r) => r.imageFiles === n).map((r) => [r.changes, r.ms]) })) },
          {
            title: 'Bytes written', xLabel: 'changed files (log scale)', yLabel: 'bytes (log scale)', xLog: true, yLog: true, yFormat: tickBytes, valueFormat: fmtBytes, labelLast: true,
            series: [
              ...images.map((n, i) => ({ name: `commit, ${fmtCount(n)}-file image`, color: col(i), points: commit.filter((r) => r.imageFiles === n).map((r) => [r.changes, r.bytes]) })),
              ...(commit.every((r) => r.flushBytes !== undefined) ? images.map((n, i) => ({ name: `flush, ${fmtCount(n)}-file image`, color: col(i), dash: true, points: commit.filter((r) => r.imageFiles === n).map((r) => [r.changes, r.flushBytes]) })) : []),
            ],
          },
        ],
      }));
      charts.Commit = '![Commit time and bytes vs changes](scale-commit.svg)';
    }
    const boxes = scale.boxes ?? [];
    if (boxes.length) {
      const label = (r) => (r.boxes === 0 ? 'store open, no box' : `${r.boxes} box${r.boxes === 1 ? '' : 'es'}${r.touch ? `, ${r.touch}` : ''}`);
      const groups = boxes.map((r) => ({ label: label(r), bars: [{ key: 'heap', value: r.heapMiB }, { key: 'rss', value: r.rssMiB }] }));
      const e = scale.boxesEstimate;
      if (e) groups.push({ label: `${e.boxes} boxes: estimate, one image + ${e.boxes} uppers`, bars: [{ key: 'heap', value: e.heapMiB }, { key: 'rss', value: e.rssMiB }] });
      const files = boxes[0]?.imageFiles ?? e?.imageFiles;
      put('scale-boxes.svg', barChartSvg({
        title: `Many boxes over one image${files ? ` of ${fmtCount(files)} files` : ''}: memory`,
        subtitle: 'delta after gc from a process with the library loaded',
        series: [{ key: 'heap', name: 'heap + external (MiB)', color: PALETTE[0] }, { key: 'rss', name: 'RSS (MiB)', color: PALETTE[3] }],
        groups,
        scale: 'linear',
        format: (v) => `${Math.round(v * 100) / 100} MiB`,
        axisLabel: 'MiB',
      }));
      charts.Boxes = '![Memory of many boxes over one image](scale-boxes.svg)';
    }
    for (const sec of sections) {
      md.push(sec.trimEnd(), '');
      const key = Object.keys(charts).find((k) => sec.startsWith(`### ${k}`));
      if (key) md.push(charts[key], '');
    }
    if (scale.notes?.length) {
      md.push('### How the scale numbers were taken', '');
      for (const n of scale.notes) md.push(`- ${n}`);
      md.push('');
    }
  }

  // ---- notes ----
  md.push('## Notes', '');
  md.push('Where layerbox is slower than a peer (ratio above 1), and why:', '');
  if (!notes.length) md.push('- none', '');
  else {
    // One bullet per explanation: the rows it covers, then the reason once.
    const byWhy = new Map();
    for (const n of notes) {
      const k = n.why || `\u0000${n.text}`;
      byWhy.set(k, [...(byWhy.get(k) ?? []), n.text]);
    }
    for (const [why, texts] of byWhy) md.push(`- ${texts.map(mdEsc).join('; ')}.${why.startsWith('\u0000') ? ' No explanation on file for this row: profile it.' : ` ${why}`}`);
    md.push('');
  }
  put('REPORT.md', md.join('\n'));
  return files;
}

// ---- command line -----------------------------------------------------------------------

if (process.argv[1] && resolve(process.argv[1]) === SELF) {
  const args = process.argv.slice(2);
  const opt = (name, def) => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] ? resolve(args[i + 1]) : def;
  };
  const read = (file) => (existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : null);
  const outDir = opt('--out', RESULTS);
  const peersFile = opt('--peers', join(RESULTS, 'peers.json'));
  const scaleFile = opt('--scale', join(RESULTS, 'scale.json'));
  const peers = read(peersFile), scale = read(scaleFile);
  if (!peers) console.error(`no ${peersFile}: the report has no peer comparison`);
  if (!scale) console.error(`no ${scaleFile}: the report has no scale section`);
  const files = writeReport({ peers, scale, outDir });
  console.log(`wrote ${files.map((f) => f.replace(process.cwd() + '/', '')).join(', ')}`);
}
