/** The hub's firmware service (issue 7): images, manifests, rollouts, chunk serving, API routes; its storage port and the SQLite backend. */
export * from './api-routes.js';
export * from './chunk-server.js';
export * from './disk-images.js';
export * from './firmware-db.js';
export * from './firmware-port.js';
export * from './firmware-service.js';
export * from './rollout-plan.js';
