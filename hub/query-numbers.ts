/**
 * Bounds on every numeric query and path parameter of the API (issue 13
 * item 9). Fastify's ajv coerces a query string to a number before checking
 * its type, and `Number('Infinity')` is a number that passes `type:
 * integer` (Infinity % 1 is NaN, and ajv's check is `!(x % 1)`): so
 * `bucketMs=Infinity` reached a handler and answered 500. `1e400` does the
 * same. This `onRoute` hook gives each numeric parameter without its own
 * bounds `minimum`/`maximum` of ±Number.MAX_SAFE_INTEGER, so the infinities
 * and any number no integer column can hold answer 400 naming the
 * parameter, on every route, including routes added later. Install it
 * before the routes (hub/api.ts does).
 */
import type { FastifyInstance, RouteOptions } from 'fastify';

type Json = Record<string, unknown>;

function bound(prop: Json): void {
  const types = Array.isArray(prop.type) ? (prop.type as unknown[]) : [prop.type];
  if (!types.includes('integer') && !types.includes('number')) return;
  if (prop.maximum === undefined && prop.exclusiveMaximum === undefined) prop.maximum = Number.MAX_SAFE_INTEGER;
  if (prop.minimum === undefined && prop.exclusiveMinimum === undefined) prop.minimum = -Number.MAX_SAFE_INTEGER;
}

function boundAll(schema: unknown): unknown {
  if (!schema || typeof schema !== 'object') return schema;
  const s = schema as Json;
  const props = s.properties as Record<string, Json> | undefined;
  if (!props) return schema;
  // A copy: a schema object may be shared by several routes (and frozen).
  const copy: Json = { ...s, properties: Object.fromEntries(Object.entries(props).map(([k, v]) => [k, v && typeof v === 'object' ? { ...v } : v])) };
  for (const v of Object.values(copy.properties as Record<string, Json>)) if (v && typeof v === 'object') bound(v);
  return copy;
}

/** Adds the bounds to the querystring and params schemas of every route registered after this call. */
export function boundQueryNumbers(app: FastifyInstance): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    if (!route.schema) return;
    const schema = route.schema as Json;
    if (schema.querystring) schema.querystring = boundAll(schema.querystring);
    if (schema.params) schema.params = boundAll(schema.params);
  });
}
