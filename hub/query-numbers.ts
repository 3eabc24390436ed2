/**
 * Bounds on every numeric query and path parameter of the API (issue 13
 * item 9). Fastify's ajv coerces a query string to a number before checking
 * its type, and `Number('Infinity')` is a number that passes `type:
 * integer` (Infinity % 1 is NaN, and ajv's check is `!(x % 1)`): so
 * `bucketMs=Infinity` reached a handler and answered 500. `1e400` does the
 * same, and ajv's `maximum` does not stop either (measured with fastify 5.12
 * and ajv 8.20: `maximum: 1000` refuses 5000 but lets Infinity through).
 * So two hooks, for every route including routes added later:
 * - `onRoute` gives each numeric parameter without its own bounds
 *   `minimum`/`maximum` of ±Number.MAX_SAFE_INTEGER: `1e20` and any number
 *   no integer column can hold answer 400 naming the parameter;
 * - `preHandler` (after validation and its coercion) answers 400 to any
 *   query or path parameter that came out as a non-finite number.
 * Install before the routes (hub/api.ts does).
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
  app.addHook('preHandler', async (req, reply) => {
    for (const [where, values] of [['querystring', req.query], ['params', req.params]] as const) {
      if (!values || typeof values !== 'object') continue;
      for (const [name, v] of Object.entries(values as Record<string, unknown>)) {
        if (typeof v === 'number' && !Number.isFinite(v)) {
          return reply.status(400).send({ error: { code: 'HUB_ERR_BAD_REQUEST', message: `${where}/${name} must be a finite number; got ${String(v)} (HUB_ERR_BAD_REQUEST)` } });
        }
      }
    }
  });
}
