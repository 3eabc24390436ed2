/** Entry point of the compiled `ioc-edge` (`node dist/bin/main.js …`), as a systemd unit runs it. */
const argv = process.argv.slice(2);
if (argv[0] === 'run') {
  // The gateway service loads only the gateway: the dispatcher would also load every other
  // command, the hub's included (~11 MB more RSS for a process that runs for months).
  const { run } = await import('../gateway/cli/run.js');
  process.exitCode = await run.run(argv.slice(1), { out: process.stdout, err: process.stderr });
} else {
  const { main } = await import('./cli.js');
  process.exitCode = await main(argv);
}
