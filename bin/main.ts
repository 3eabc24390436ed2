/** Entry point of the compiled `ioc-edge` (`node dist/bin/main.js …`), as a systemd unit runs it. */
import { main } from './cli.js';

process.exitCode = await main(process.argv.slice(2));
