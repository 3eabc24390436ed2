/** Test helper: an archive's rows, for comparing two archives table by table. */
import { readArchive, type Row } from '../archive.js';

/** Every table's rows of an archive as JSON, each table sorted (the backends read in different orders). */
export async function contents(file: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for await (const item of readArchive(file)) {
    if (item.kind !== 'rows') continue;
    const rows = out.get(item.table) ?? [];
    for (const r of item.rows as Row[]) rows.push(JSON.stringify(r));
    out.set(item.table, rows);
  }
  for (const rows of out.values()) rows.sort();
  return out;
}
