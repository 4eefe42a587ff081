// Drives the seed's Complete Chat Example (./example.mjs, URL and token substituted) against a
// running realcast: a moderator connection (stock socket.io-client) talks to the example's user,
// then bans them. Prints "DRIVER OK" and exits 0 on success; exits 1 with the reason otherwise.
//
// Environment: REALCAST_URL, MOD_TOKEN (a moderator of stream_qwe456 named "Mod").
import { io } from 'socket.io-client';

const STREAM = 'stream_qwe456';
const lines = [];
const print = console.log.bind(console);
console.log = (...args) => {
  lines.push(args.join(' '));
  print(...args);
};
// Browsers have alert(); node does not. The example calls it when banned.
globalThis.alert = (message) => console.log(`ALERT: ${message}`);

const has = (line) => lines.includes(line);
async function waitFor(predicate, what, ms = 8000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`timed out waiting for ${what}; output so far: ${JSON.stringify(lines)}`);
}

async function main() {
  const mod = io(process.env.REALCAST_URL, {
    auth: { token: process.env.MOD_TOKEN, app_id: 'app_xyz789' },
    transports: ['websocket'],
    reconnection: false,
  });
  const seen = [];
  mod.onAny((event, data) => seen.push([event, data]));
  const saw = (event, test) => seen.some(([e, d]) => e === event && test(d));
  await new Promise((resolve, reject) => {
    mod.on('connect', resolve);
    mod.on('connect_error', reject);
  });
  const joined = await mod.timeout(5000).emitWithAck('chat:join', { stream_id: STREAM });
  if (!joined.ok) throw new Error(`moderator could not join: ${JSON.stringify(joined)}`);

  // The example's usage section runs on import: it connects, joins, sends a message and a reaction.
  await import('./example.mjs');

  await waitFor(() => has('Connected!'), 'the example to connect');
  await waitFor(() => has('GamerPro: Hello everyone!'), 'the example to see its own message');
  await waitFor(
    () => saw('chat:message', (d) => d.user_id === 'user_abc123' && d.message === 'Hello everyone!'),
    'the moderator to receive the example\'s message',
  );
  await waitFor(
    () => saw('reaction.sent', (d) => d.user_id === 'user_abc123' && d.emoji === '👍' && d.x >= 0 && d.x < 1),
    'the moderator to receive the example\'s reaction',
  );
  await waitFor(() => has('Viewers: 2'), 'a viewer count of 2');

  mod.emit('chat:typing', { stream_id: STREAM });
  await waitFor(() => has('Mod is typing...'), 'the typing indicator');
  const sent = await mod.timeout(5000).emitWithAck('chat:message', { stream_id: STREAM, message: 'Welcome!' });
  if (!sent.ok) throw new Error(`moderator message refused: ${JSON.stringify(sent)}`);
  await waitFor(() => has('Mod: Welcome!'), 'the example to display the moderator\'s message');

  const ban = await mod.timeout(5000).emitWithAck('moderation:ban', {
    stream_id: STREAM,
    target_user_id: 'user_abc123',
    reason: 'Spam',
    duration: 3600,
  });
  if (!ban.ok) throw new Error(`ban refused: ${JSON.stringify(ban)}`);
  await waitFor(() => has('ALERT: You have been banned from this chat'), 'the example to handle its ban');
  await waitFor(() => saw('viewer.left', (d) => d.user_id === 'user_abc123'), 'the banned user to leave');
  await waitFor(() => saw('viewer.count.update', (d) => d.count === 1), 'the viewer count to drop to 1');
  mod.disconnect();
  print('DRIVER OK');
}

main().then(
  () => process.exit(0),
  (err) => {
    print(`DRIVER FAILED: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  },
);
