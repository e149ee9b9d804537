// Warm unless asked to run once.
if (process.argv.slice(2).includes('--once')) once();
else serve();
