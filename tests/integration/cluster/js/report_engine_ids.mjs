// Runs the seed example's driver (./drive.mjs) and prints "ENGINE <id>" each time a stock
// socket.io-client connection opens its Engine.IO session, in the order they open. Through a
// balancer the session id names the node that holds the session ("n1.<20 chars>"), so the test
// can check that the moderator and the example's user landed on different nodes. The example
// keeps its socket to itself; its Manager's onopen is the one place every connection passes.
import { Manager } from 'socket.io-client';

const onopen = Manager.prototype.onopen;
Manager.prototype.onopen = function reportEngineId(...args) {
  process.stdout.write(`ENGINE ${this.engine.id}\n`);
  return onopen.apply(this, args);
};

await import('./drive.mjs');
