/** The hub's firmware service (issue 7): images, manifests, rollouts, chunk serving, API routes. */
export * from './api-routes.js';
export * from './chunk-server.js';
export * from './firmware-db.js';
export * from './firmware-service.js';
export * from './rollout-plan.js';
