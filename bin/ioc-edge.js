#!/usr/bin/env node
// ioc-edge command line. Runs the TypeScript sources through tsx's loader so
// that there is no build step between a checkout and a technician's laptop.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./cli.ts');
process.exitCode = await main(process.argv.slice(2));
