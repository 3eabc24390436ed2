/**
 * Canonical JSON for signatures: object keys sorted (by UTF-16 code units,
 * as `Array.prototype.sort` does) at every level, no whitespace, strings and
 * numbers written by `JSON.stringify`. Members whose value is `undefined` are
 * left out, as JSON.stringify does. Two parties that hold the same value
 * produce the same bytes, whatever order the keys arrived in — the signed
 * manifest can travel through any JSON parser and still verify.
 *
 * Manifests hold only strings and integers; non-finite numbers are refused
 * rather than written as `null`.
 */

/** The canonical JSON text of `value`. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`canonical JSON cannot hold ${value}`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  if (typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
  }
  throw new TypeError(`canonical JSON cannot hold a ${typeof value}`);
}

/** The canonical JSON of `value` as UTF-8 bytes: what is signed. */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalJson(value), 'utf8');
}
