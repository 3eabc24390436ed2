/** Plain-text tables for CLI output: columns padded to their widest cell. */

/** Writes `rows` under `header`, columns separated by two spaces. */
export function printTable(out: NodeJS.WritableStream, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  out.write(`${line(header)}\n${rows.map(line).join('\n')}${rows.length ? '\n' : ''}`);
}
