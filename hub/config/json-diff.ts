/**
 * A structural diff of two configuration versions for operators. Arrays of
 * objects that carry an `id` (buses, devices) or a `model` (profiles) are
 * matched by that key, not by position, so inserting a device reads as one
 * added device rather than every later device "changed". Each change has a
 * JSON pointer (RFC 6901) into the document it is about — the new one for
 * additions and replacements, the old one for removals — and a readable
 * label such as `config.devices[flood-1].pollIntervalMs`.
 */

/** One difference. */
export interface JsonChange {
  op: 'add' | 'remove' | 'replace';
  /** JSON pointer into the newer document (`add`, `replace`) or the older one (`remove`). */
  path: string;
  label: string;
  from?: unknown;
  to?: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const esc = (t: string): string => t.replace(/~/g, '~0').replace(/\//g, '~1');

function keyOf(items: unknown[]): 'id' | 'model' | null {
  for (const k of ['id', 'model'] as const) {
    if (items.length > 0 && items.every((x) => isObject(x) && typeof x[k] === 'string') && new Set(items.map((x) => (x as Record<string, unknown>)[k])).size === items.length) return k;
  }
  return null;
}

/** Differences from `a` to `b`. */
export function jsonDiff(a: unknown, b: unknown): JsonChange[] {
  const out: JsonChange[] = [];
  walk(a, b, '', '', '', out);
  return out;
}

function walk(a: unknown, b: unknown, pathA: string, pathB: string, label: string, out: JsonChange[]): void {
  if (isObject(a) && isObject(b)) {
    for (const k of Object.keys(a)) {
      const l = label ? `${label}.${k}` : k;
      if (!(k in b)) out.push({ op: 'remove', path: `${pathA}/${esc(k)}`, label: l, from: a[k] });
      else walk(a[k], b[k], `${pathA}/${esc(k)}`, `${pathB}/${esc(k)}`, l, out);
    }
    for (const k of Object.keys(b)) if (!(k in a)) out.push({ op: 'add', path: `${pathB}/${esc(k)}`, label: label ? `${label}.${k}` : k, to: b[k] });
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    const ka = a.length > 0 ? keyOf(a) : null;
    const kb = b.length > 0 ? keyOf(b) : null;
    const key = ka && kb ? (ka === kb ? ka : null) : (ka ?? kb);
    if (key) {
      const ia = new Map(a.map((x, i) => [String((x as Record<string, unknown>)[key]), i]));
      const ib = new Map(b.map((x, i) => [String((x as Record<string, unknown>)[key]), i]));
      for (const [k, i] of ia) {
        const j = ib.get(k);
        if (j === undefined) out.push({ op: 'remove', path: `${pathA}/${i}`, label: `${label}[${k}]`, from: a[i] });
        else walk(a[i], b[j], `${pathA}/${i}`, `${pathB}/${j}`, `${label}[${k}]`, out);
      }
      for (const [k, j] of ib) if (!ia.has(k)) out.push({ op: 'add', path: `${pathB}/${j}`, label: `${label}[${k}]`, to: b[j] });
      return;
    }
    const n = Math.max(a.length, b.length);
    for (let i = 0; i < n; i++) {
      if (i >= b.length) out.push({ op: 'remove', path: `${pathA}/${i}`, label: `${label}[${i}]`, from: a[i] });
      else if (i >= a.length) out.push({ op: 'add', path: `${pathB}/${i}`, label: `${label}[${i}]`, to: b[i] });
      else walk(a[i], b[i], `${pathA}/${i}`, `${pathB}/${i}`, `${label}[${i}]`, out);
    }
    return;
  }
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ op: 'replace', path: pathB, label, from: a, to: b });
}
