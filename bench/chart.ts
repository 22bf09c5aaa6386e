// bench/results/ticks-*.json → bench/results/ticks.svg: tick fan-out p99 latency against client
// count, one line per server (and process count); bench/results/presence-scale-*.json →
// bench/results/presence-scale.svg: writer lag p99 and PostgreSQL CPU against the events offered.
// Hand-written SVG, no dependencies.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readReports, RESULTS_DIR, type ScenarioReport } from './lib/report.js';

export interface Point {
  series: string;
  clients: number;
  p99: number;
  at: string;
}

/** The newest measurement per (series, client count) from every ticks result file. */
export function collectPoints(dir = RESULTS_DIR): Point[] {
  const latest = new Map<string, Point>();
  for (const report of readReports(['ticks'], dir)) {
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


// ---- presence-scale: writer lag p99 and PostgreSQL CPU against the events offered, per sweep ----

export interface SweepPoint {
  series: string;
  absorbed: number;
  rate: number;
  lagP99: number;
  pgCpuPer1000: number | null;
  within: boolean;
  at: string;
}

/** Every step of the newest sweep of each series (the run's --label, else its commit and instance count). */
export function collectSweeps(dir = RESULTS_DIR): SweepPoint[] {
  const newest = new Map<string, ScenarioReport>();
  for (const report of readReports(['presence-scale'], dir)) {
    if (!report.steps?.length) continue;
    const k = Number(report.options.instances ?? 0);
    const name = typeof report.options.label === 'string' && report.options.label ? report.options.label : `${report.source?.commit ?? '?'}${report.source?.srcDirty ? ' (src/ modified)' : ''}`;
    const series = `${name}, K = ${k}`;
    const previous = newest.get(series);
    if (!previous || previous.startedAt < report.startedAt) newest.set(series, report);
  }
  const points: SweepPoint[] = [];
  for (const [series, report] of newest) {
    for (const step of report.steps ?? []) {
      if (typeof step.absorbedPerSecond !== 'number' || typeof step.lagP99Ms !== 'number' || step.absorbedPerSecond <= 0) continue;
      points.push({
        series,
        absorbed: step.absorbedPerSecond,
        rate: Number(step.rate),
        lagP99: Math.max(1, step.lagP99Ms),
        pgCpuPer1000: typeof step.postgresCpuMsPer1000 === 'number' ? step.postgresCpuMsPer1000 : null,
        within: step.withinCeiling === true,
        at: report.startedAt,
      });
    }
  }
  return points.sort((a, b) => a.series.localeCompare(b.series) || a.rate - b.rate);
}

export function renderSweepChart(points: SweepPoint[]): string {
  const width = 1040;
  const m = { left: 70, right: 400, top: 44 };
  const panel = 230;
  const gap = 60;
  const height = m.top + panel + gap + panel + 56;
  const plotW = width - m.left - m.right;
  const log = (v: number): number => Math.log10(v);
  const xs = points.map((p) => p.rate);
  const xLo = Math.floor(log(Math.max(100, Math.min(1000, ...xs))));
  const xHi = Math.ceil(log(Math.max(10_000, ...xs)));
  const x = (v: number): number => m.left + ((log(v) - xLo) / Math.max(1, xHi - xLo)) * plotW;
  const lagHi = Math.ceil(log(Math.max(1000, ...points.map((p) => p.lagP99))));
  const lagLo = Math.min(1, Math.floor(log(Math.min(...points.map((p) => p.lagP99), 100))));
  const yLag = (ms: number): number => m.top + panel - ((log(ms) - lagLo) / Math.max(1, lagHi - lagLo)) * panel;
  const cpu = points.map((p) => p.pgCpuPer1000).filter((v): v is number => v !== null && v > 0);
  const cpuHi = Math.ceil(log(Math.max(100, ...cpu)));
  const cpuLo = Math.min(1, Math.floor(log(Math.min(...cpu, 100))));
  const top2 = m.top + panel + gap;
  const yCpu = (ms: number): number => top2 + panel - ((log(Math.max(ms, 10 ** cpuLo)) - cpuLo) / Math.max(1, cpuHi - cpuLo)) * panel;
  const palette = ['#d6336c', '#1c7ed6', '#f08c00', '#2b8a3e', '#ae3ec9', '#495057', '#0c8599', '#e8590c', '#5c940d', '#343a40'];
  const series = [...new Set(points.map((p) => p.series))];
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  out.push(`<text x="${m.left}" y="22" font-size="15" font-weight="600">Presence on one PostgreSQL: K instances, R session events/s (presence-scale)</text>`);
  const axes = (top: number, lo: number, hi: number, y: (v: number) => number, title: string): void => {
    for (let e = lo; e <= hi; e++) {
      const v = 10 ** e;
      out.push(`<line x1="${m.left}" x2="${m.left + plotW}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e9ecef"/>`);
      out.push(`<text x="${m.left - 8}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="#495057">${v.toLocaleString('en-US')}</text>`);
    }
    for (let e = xLo; e <= xHi; e++) {
      for (const k of e < xHi ? [1, 2, 5] : [1]) {
        const v = k * 10 ** e;
        out.push(`<line x1="${x(v).toFixed(1)}" x2="${x(v).toFixed(1)}" y1="${top}" y2="${top + panel}" stroke="${k === 1 ? '#e9ecef' : '#f4f5f6'}"/>`);
        out.push(`<text x="${x(v).toFixed(1)}" y="${top + panel + 16}" text-anchor="middle" fill="${k === 1 ? '#495057' : '#adb5bd'}" font-size="${k === 1 ? 12 : 10}">${v.toLocaleString('en-US')}</text>`);
      }
    }
    out.push(`<line x1="${m.left}" x2="${m.left + plotW}" y1="${top + panel}" y2="${top + panel}" stroke="#343a40"/>`);
    out.push(`<line x1="${m.left}" x2="${m.left}" y1="${top}" y2="${top + panel}" stroke="#343a40"/>`);
    out.push(`<text transform="translate(18 ${top + panel / 2}) rotate(-90)" text-anchor="middle" fill="#343a40">${escape(title)}</text>`);
  };
  axes(m.top, lagLo, lagHi, yLag, 'writer lag p99, ms (log)');
  out.push(`<line x1="${m.left}" x2="${m.left + plotW}" y1="${yLag(1000).toFixed(1)}" y2="${yLag(1000).toFixed(1)}" stroke="#868e96" stroke-dasharray="5 4"/>`);
  out.push(`<text x="${m.left + plotW - 4}" y="${(yLag(1000) - 5).toFixed(1)}" text-anchor="end" fill="#868e96" font-size="11">ceiling: p99 = 1 s</text>`);
  axes(top2, cpuLo, cpuHi, yCpu, 'PostgreSQL CPU ms / 1,000 events (log)');
  out.push(`<text x="${m.left + plotW / 2}" y="${height - 12}" text-anchor="middle" fill="#343a40">R: session events offered per second, all instances together (log scale)</text>`);
  series.forEach((name, i) => {
    const color = palette[i % palette.length] ?? '#000';
    const pts = points.filter((p) => p.series === name);
    const line = (y: (p: SweepPoint) => number | null): string =>
      pts
        .filter((p) => y(p) !== null)
        .map((p, j) => `${j === 0 ? 'M' : 'L'}${x(p.rate).toFixed(1)},${(y(p) as number).toFixed(1)}`)
        .join(' ');
    out.push(`<path d="${line((p) => yLag(p.lagP99))}" fill="none" stroke="${color}" stroke-width="2"/>`);
    out.push(`<path d="${line((p) => (p.pgCpuPer1000 === null ? null : yCpu(p.pgCpuPer1000)))}" fill="none" stroke="${color}" stroke-width="2"/>`);
    for (const p of pts) {
      const tip = `${escape(name)}: R = ${p.rate.toLocaleString('en-US')}, absorbed ${p.absorbed.toLocaleString('en-US')}/s, lag p99 ${p.lagP99} ms, PostgreSQL ${p.pgCpuPer1000 ?? '–'} ms/1k`;
      const fill = p.within ? color : '#fff';
      out.push(`<circle cx="${x(p.rate).toFixed(1)}" cy="${yLag(p.lagP99).toFixed(1)}" r="4" fill="${fill}" stroke="${color}" stroke-width="2"><title>${tip}</title></circle>`);
      if (p.pgCpuPer1000 !== null) out.push(`<circle cx="${x(p.rate).toFixed(1)}" cy="${yCpu(p.pgCpuPer1000).toFixed(1)}" r="4" fill="${fill}" stroke="${color}" stroke-width="2"><title>${tip}</title></circle>`);
    }
    const ly = m.top + 10 + i * 20;
    out.push(`<line x1="${m.left + plotW + 16}" x2="${m.left + plotW + 40}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<text x="${m.left + plotW + 46}" y="${ly + 4}" fill="#212529" font-size="11">${escape(name)}</text>`);
  });
  const ny = m.top + 20 + series.length * 20;
  out.push(`<text x="${m.left + plotW + 16}" y="${ny}" fill="#868e96" font-size="11">hollow: over the ceiling</text>`);
  if (points.length === 0) out.push(`<text x="${m.left + 20}" y="${m.top + 30}" fill="#868e96">no presence-scale results yet</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

export function writeSweepChart(dir = RESULTS_DIR): string {
  const path = join(dir, 'presence-scale.svg');
  writeFileSync(path, renderSweepChart(collectSweeps(dir)));
  return path;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(`wrote ${writeChart()}\nwrote ${writeSweepChart()}`);
}
