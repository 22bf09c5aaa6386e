// bench/results/ticks-*.json → bench/results/ticks.svg: tick fan-out p99 latency against client
// count, one line per server (and process count). Hand-written SVG, no dependencies.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RESULTS_DIR, type ScenarioReport } from './lib/report.js';

export interface Point {
  series: string;
  clients: number;
  p99: number;
  at: string;
}

/** The newest measurement per (series, client count) from every ticks result file. */
export function collectPoints(dir = RESULTS_DIR): Point[] {
  const latest = new Map<string, Point>();
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => /^ticks-.*\.json$/.test(f));
  } catch {
    return [];
  }
  for (const file of files) {
    let report: ScenarioReport;
    try {
      report = JSON.parse(readFileSync(join(dir, file), 'utf8')) as ScenarioReport;
    } catch {
      continue;
    }
    const workers = Number(report.options.workers ?? 1);
    for (const kind of ['pulse', 'reference'] as const) {
      const m = report.servers[kind];
      if (!m || typeof m.latencyP99Ms !== 'number' || typeof m.connected !== 'number' || m.connected === 0) continue;
      const series = `${kind}${workers > 1 ? ` ×${workers} processes` : ''}`;
      const point: Point = { series, clients: m.connected, p99: m.latencyP99Ms, at: report.startedAt };
      // Round the client count so 9,998 of 10,000 connected still lands on 10,000's point.
      const key = `${series}|${Math.round(Number(report.options.clients ?? m.connected))}`;
      const previous = latest.get(key);
      if (!previous || previous.at < point.at) latest.set(key, point);
    }
  }
  return [...latest.values()].sort((a, b) => a.series.localeCompare(b.series) || a.clients - b.clients);
}

const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function renderChart(points: Point[]): string {
  const width = 760;
  const height = 440;
  const m = { left: 70, right: 190, top: 40, bottom: 56 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const xs = points.map((p) => p.clients);
  const minX = Math.max(1, Math.min(...xs, 100));
  const maxX = Math.max(...xs, 1000);
  const lo = Math.floor(Math.log10(minX));
  const hi = Math.ceil(Math.log10(maxX));
  const x = (clients: number): number => m.left + ((Math.log10(clients) - lo) / Math.max(1, hi - lo)) * plotW;
  const rawMaxY = Math.max(1, ...points.map((p) => p.p99));
  const step = 10 ** Math.floor(Math.log10(rawMaxY)) * (rawMaxY / 10 ** Math.floor(Math.log10(rawMaxY)) > 5 ? 2 : rawMaxY / 10 ** Math.floor(Math.log10(rawMaxY)) > 2 ? 1 : 0.5);
  const maxY = Math.ceil(rawMaxY / step) * step;
  const y = (ms: number): number => m.top + plotH - (ms / maxY) * plotH;
  // Pulse in reds, the reference in blues, whatever the order of the files.
  const palette: Record<string, string[]> = { pulse: ['#d6336c', '#f08c00', '#ae3ec9'], reference: ['#1c7ed6', '#2b8a3e', '#495057'] };
  const used: Record<string, number> = { pulse: 0, reference: 0 };
  const series = [...new Set(points.map((p) => p.series))].sort();
  const colorOf = new Map<string, string>();
  for (const name of series) {
    const kind = name.startsWith('pulse') ? 'pulse' : 'reference';
    const list = palette[kind] ?? [];
    colorOf.set(name, list[(used[kind] ?? 0) % list.length] ?? '#000');
    used[kind] = (used[kind] ?? 0) + 1;
  }
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  out.push(`<text x="${m.left}" y="22" font-size="15" font-weight="600">Tick fan-out latency p99 (ms) against connected clients</text>`);
  // grid and axes
  for (let v = 0; v <= maxY + 1e-9; v += step) {
    out.push(`<line x1="${m.left}" x2="${m.left + plotW}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e9ecef"/>`);
    out.push(`<text x="${m.left - 8}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="#495057">${Number(v.toFixed(3))}</text>`);
  }
  for (let e = lo; e < hi; e++) {
    for (const k of [2, 5]) {
      const v = k * 10 ** e;
      out.push(`<line x1="${x(v).toFixed(1)}" x2="${x(v).toFixed(1)}" y1="${m.top}" y2="${m.top + plotH}" stroke="#f4f5f6"/>`);
      out.push(`<text x="${x(v).toFixed(1)}" y="${m.top + plotH + 18}" text-anchor="middle" fill="#adb5bd" font-size="10">${v.toLocaleString('en-US')}</text>`);
    }
  }
  for (let e = lo; e <= hi; e++) {
    const v = 10 ** e;
    out.push(`<line x1="${x(v).toFixed(1)}" x2="${x(v).toFixed(1)}" y1="${m.top}" y2="${m.top + plotH}" stroke="#e9ecef"/>`);
    out.push(`<text x="${x(v).toFixed(1)}" y="${m.top + plotH + 18}" text-anchor="middle" fill="#495057">${v.toLocaleString('en-US')}</text>`);
  }
  out.push(`<line x1="${m.left}" x2="${m.left + plotW}" y1="${m.top + plotH}" y2="${m.top + plotH}" stroke="#343a40"/>`);
  out.push(`<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + plotH}" stroke="#343a40"/>`);
  out.push(`<text x="${m.left + plotW / 2}" y="${height - 14}" text-anchor="middle" fill="#343a40">connected clients (log scale)</text>`);
  out.push(`<text transform="translate(18 ${m.top + plotH / 2}) rotate(-90)" text-anchor="middle" fill="#343a40">p99 latency, ms</text>`);
  series.forEach((name, i) => {
    const color = colorOf.get(name) ?? '#000';
    const pts = points.filter((p) => p.series === name);
    const path = pts.map((p, j) => `${j === 0 ? 'M' : 'L'}${x(p.clients).toFixed(1)},${y(p.p99).toFixed(1)}`).join(' ');
    out.push(`<path d="${path}" fill="none" stroke="${color}" stroke-width="2"/>`);
    for (const p of pts) {
      out.push(
        `<circle cx="${x(p.clients).toFixed(1)}" cy="${y(p.p99).toFixed(1)}" r="4" fill="${color}"><title>${escape(name)}: ${p.clients.toLocaleString('en-US')} clients, p99 ${p.p99} ms</title></circle>`,
      );
    }
    const ly = m.top + 10 + i * 20;
    out.push(`<line x1="${m.left + plotW + 16}" x2="${m.left + plotW + 40}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<text x="${m.left + plotW + 46}" y="${ly + 4}" fill="#212529">${escape(name)}</text>`);
  });
  if (points.length === 0) out.push(`<text x="${m.left + 20}" y="${m.top + 30}" fill="#868e96">no ticks results yet</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

export function writeChart(dir = RESULTS_DIR): string {
  const path = join(dir, 'ticks.svg');
  writeFileSync(path, renderChart(collectPoints(dir)));
  return path;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(`wrote ${writeChart()}`);
}
