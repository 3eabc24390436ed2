/** The hub's firmware service (issue 7): images, manifests, rollouts, chunk serving, API routes, and its storage port (the backends are in hub/store/). */
export * from './api-routes.js';
export * from './chunk-server.js';
export * from './firmware-port.js';
export * from './firmware-service.js';
export * from './rollout-plan.js';
