/**
 * Firmware routes of the HTTP API (issue 7). Reading needs `viewer`,
 * anything that changes state `operator`; every change is audited by the
 * service (who, what, the manifest or rollout) before the answer goes out.
 *
 * - `PUT /api/v1/firmware/images` (application/octet-stream, up to 64 MiB):
 *   stores an image content-addressed → `{sha256, size, created}`
 * - `GET /api/v1/firmware/images`
 * - `POST /api/v1/firmware/manifests` (a signed manifest) / `GET`
 * - `POST /api/v1/firmware/rollouts` `{manifest, target: {profile?, site?,
 *   devices?: ["gw/device"]}, canary?, canaryDevices?: ["gw/device"], seed?,
 *   waveSize?, maxFailurePercent?}` / `GET` (targets in a seeded random
 *   order, rollout-plan.ts)
 * - `GET /api/v1/firmware/rollouts/:id` (with its jobs)
 * - `POST /api/v1/firmware/rollouts/:id/pause|resume|cancel`
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isIocError, type ErrorCode } from '../../contract/index.js';
import { actorOf } from '../identity/api-routes.js';
import type { FirmwareService, RolloutRequest } from './firmware-service.js';

/** Largest image accepted, bytes (the manifest schema's limit). */
export const MAX_IMAGE_BYTES = 64 * 1024 * 1024;

const STATUS: Partial<Record<ErrorCode, number>> = {
  HUB_ERR_NOT_FOUND: 404, FW_ERR_IMAGE_NOT_FOUND: 404, FW_ERR_ROLLOUT_STATE: 409,
  FW_ERR_MANIFEST: 400, FW_ERR_UNSIGNED: 400, FW_ERR_UNTRUSTED_KEY: 400, FW_ERR_SIGNATURE: 400, FW_ERR_INTEGRITY: 400, FW_ERR_WRONG_MODEL: 400, FW_ERR_NO_TARGETS: 400,
};

function replyError(reply: FastifyReply, err: unknown): FastifyReply {
  if (!isIocError(err)) throw err;
  return reply.status(STATUS[err.code] ?? 500).send({ error: { code: err.code, message: err.message } });
}

const ID = { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } as const;
const GW_DEVICE = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}/[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' } as const;
const progress = {
  type: 'object',
  properties: Object.fromEntries(['total', 'pending', 'offered', 'downloading', 'downloaded', 'updating', 'inProgress', 'updated', 'failed', 'cancelled', 'failedGateways'].map((k) => [k, { type: 'integer' }])),
} as const;
const rolloutView = {
  type: 'object',
  properties: {
    id: { type: 'string' }, manifestId: { type: 'string' }, model: { type: 'string' }, version: { type: 'string' },
    state: { enum: ['running', 'paused', 'stopped', 'cancelled', 'completed'] }, reason: { type: ['string', 'null'] },
    target: { type: 'object', additionalProperties: true }, canary: { type: 'integer' }, waveSize: { type: 'integer' }, maxFailurePercent: { type: 'number' },
    stage: { type: 'integer' }, stages: { type: 'integer' }, ackFailures: { type: 'integer' },
    seed: { type: ['string', 'null'] }, canaryDevices: { type: ['array', 'null'], items: { type: 'string' } },
    createdAt: { type: 'integer' }, createdBy: { type: 'string' }, updatedAt: { type: 'integer' },
    manifest: { type: 'object', additionalProperties: true }, progress,
  },
} as const;

/** Adds the firmware routes to `app`. */
export function registerFirmwareRoutes(app: FastifyInstance, deps: { firmware: FirmwareService }): void {
  const { firmware } = deps;
  const audited = (req: FastifyRequest): void => {
    req.audited = true;
  };

  // Images are raw bytes: a parser for application/octet-stream, in its own scope.
  void app.register(async (scope) => {
    scope.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: MAX_IMAGE_BYTES }, (_req, body, done) => done(null, body));
    scope.put('/api/v1/firmware/images', {
      config: { role: 'operator', action: 'firmware.image.upload' },
      bodyLimit: MAX_IMAGE_BYTES,
      schema: { response: { 201: { type: 'object', properties: { sha256: { type: 'string' }, size: { type: 'integer' }, created: { type: 'boolean' } } }, '4xx': { type: 'object', additionalProperties: true } } },
    }, async (req, reply) => {
      if (!Buffer.isBuffer(req.body)) return reply.status(415).send({ error: { code: 'HUB_ERR_BAD_REQUEST', message: 'send the image as application/octet-stream (HUB_ERR_BAD_REQUEST)' } });
      try {
        const r = await firmware.uploadImage(req.body, actorOf(req));
        audited(req);
        return reply.status(201).send(r);
      } catch (err) {
        return replyError(reply, err);
      }
    });
  });

  app.get('/api/v1/firmware/images', async () => ({ items: await firmware.images() }));

  app.post('/api/v1/firmware/manifests', { config: { role: 'operator', action: 'firmware.manifest.add' }, bodyLimit: 65_536 }, async (req, reply) => {
    try {
      const m = await firmware.addManifest(req.body, actorOf(req));
      audited(req);
      return reply.status(201).send(m);
    } catch (err) {
      return replyError(reply, err);
    }
  });

  app.get('/api/v1/firmware/manifests', async () => ({ items: await firmware.listManifests() }));

  app.post<{ Body: RolloutRequest }>('/api/v1/firmware/rollouts', {
    config: { role: 'operator', action: 'firmware.rollout.create' },
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['manifest'],
        properties: {
          manifest: ID,
          target: {
            type: 'object', additionalProperties: false,
            properties: { profile: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' }, site: { type: 'string', minLength: 1, maxLength: 128 }, devices: { type: 'array', minItems: 1, maxItems: 10_000, items: GW_DEVICE } },
          },
          canary: { type: 'integer', minimum: 0, maximum: 1000 },
          canaryDevices: { type: 'array', minItems: 1, maxItems: 1000, uniqueItems: true, items: GW_DEVICE, description: 'the canaries, chosen by the operator; default: the first targets of the seeded order, one per gateway' },
          seed: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'seed of the target order (default random; recorded in the rollout)' },
          waveSize: { type: 'integer', minimum: 1, maximum: 100_000 },
          maxFailurePercent: { type: 'number', minimum: 0, maximum: 100 },
        },
      },
      response: { 201: rolloutView },
    },
  }, async (req, reply) => {
    try {
      const v = await firmware.createRollout(req.body, actorOf(req));
      audited(req);
      return reply.status(201).send(v);
    } catch (err) {
      return replyError(reply, err);
    }
  });

  app.get('/api/v1/firmware/rollouts', { schema: { response: { 200: { type: 'object', properties: { items: { type: 'array', items: rolloutView } } } } } }, async () => ({ items: await firmware.listRollouts() }));

  app.get<{ Params: { id: string } }>('/api/v1/firmware/rollouts/:id', { schema: { params: { type: 'object', properties: { id: ID } } } }, async (req, reply) => {
    const v = await firmware.view(req.params.id);
    if (!v) return reply.status(404).send({ error: { code: 'HUB_ERR_NOT_FOUND', message: `no rollout '${req.params.id}' (HUB_ERR_NOT_FOUND)` } });
    return { ...v, jobs: await firmware.jobs(req.params.id) };
  });

  for (const action of ['pause', 'resume', 'cancel'] as const) {
    app.post<{ Params: { id: string } }>(`/api/v1/firmware/rollouts/:id/${action}`, {
      config: { role: 'operator', action: `firmware.rollout.${action}` },
      schema: { params: { type: 'object', properties: { id: ID } }, response: { 200: rolloutView } },
    }, async (req, reply) => {
      try {
        const v = await firmware[action](req.params.id, actorOf(req));
        audited(req);
        return v;
      } catch (err) {
        return replyError(reply, err);
      }
    });
  }
}
