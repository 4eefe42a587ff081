// Node socket.io 4.8 peer for the RealCast benchmarks: the same minimal chat app as
// benchmarks/peers/psio_*.py. JWT (HS256) checked on connect with node's crypto,
// `chat:join` joins the room keyed by stream_id, `chat:message` is broadcast to the
// room (sender included) with a generated message_id and an ISO timestamp.
//
//   BENCH_JWT_SECRET=... node server.js --port 8010 [--host 127.0.0.1] [--app-id app_bench]
//       [--redis-url redis://127.0.0.1:6379/0 [--redis-adapter classic|sharded]]
//
// With --redis-url the server is one node of a cluster: @socket.io/redis-adapter 8.x over a
// node-redis 4.x client, as the adapter's documentation sets it up. "classic" (the default)
// is createAdapter (PUBLISH/PSUBSCRIBE), "sharded" is createShardedAdapter (Redis 7
// SPUBLISH/SSUBSCRIBE, a channel per room while the node has members in it).
"use strict";

const http = require("http");
const crypto = require("crypto");
const { Server } = require("socket.io");

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const port = parseInt(arg("--port", process.env.BENCH_PORT || "8010"), 10);
const host = arg("--host", "127.0.0.1");
const appId = arg("--app-id", process.env.BENCH_APP_ID || "app_bench");
const secret = process.env.BENCH_JWT_SECRET || "bench-secret";
const pingInterval = parseInt(arg("--ping-interval", "25000"), 10);
const pingTimeout = parseInt(arg("--ping-timeout", "20000"), 10);
const redisUrl = arg("--redis-url", "");
const redisAdapterKind = arg("--redis-adapter", "classic");

function b64urlJson(s) {
  return JSON.parse(Buffer.from(s, "base64url").toString("utf8"));
}

// Minimal HS256 verification: header.alg, signature (constant time), exp, sub, aud = app id.
function verifyJwt(token) {
  if (typeof token !== "string") return null;
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  let header, claims;
  try {
    header = b64urlJson(parts[0]);
    claims = b64urlJson(parts[1]);
  } catch (e) {
    return null;
  }
  if (header.alg !== "HS256") return null;
  const want = crypto.createHmac("sha256", secret).update(parts[0] + "." + parts[1]).digest();
  const got = Buffer.from(parts[2], "base64url");
  if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) return null;
  if (typeof claims.exp !== "number" || claims.exp < Date.now() / 1000) return null;
  if (typeof claims.sub !== "string") return null;
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.includes(appId)) return null;
  return claims;
}

const httpServer = http.createServer();
const io = new Server(httpServer, {
  transports: ["websocket"],
  pingInterval,
  pingTimeout,
  serveClient: false,
});

io.use((socket, next) => {
  const auth = socket.handshake.auth || {};
  if (auth.app_id !== appId) return next(new Error("invalid app_id"));
  const claims = verifyJwt(auth.token);
  if (!claims) return next(new Error("authentication failed"));
  socket.data.userId = claims.sub;
  socket.data.username = claims.name || claims.sub;
  next();
});

io.on("connection", (socket) => {
  socket.on("chat:join", (data) => {
    if (!data || typeof data.stream_id !== "string") return;
    socket.join(data.stream_id);
    const room = io.sockets.adapter.rooms.get(data.stream_id);
    socket.emit("chat:joined", { stream_id: data.stream_id, online_users: room ? room.size : 1 });
  });
  socket.on("chat:message", (data) => {
    if (!data || typeof data.stream_id !== "string" || typeof data.message !== "string") return;
    if (!socket.rooms.has(data.stream_id)) return;
    io.to(data.stream_id).emit("chat:message", {
      message_id: "msg_" + crypto.randomUUID(),
      stream_id: data.stream_id,
      user_id: socket.data.userId,
      username: socket.data.username,
      message: data.message,
      timestamp: new Date().toISOString(),
    });
  });
});

// Listen only once the adapter is subscribed: a client that joins earlier would miss
// the other node's broadcasts.
async function attachRedisAdapter() {
  if (!redisUrl) return;
  if (redisAdapterKind !== "classic" && redisAdapterKind !== "sharded") {
    throw new Error(`--redis-adapter must be classic or sharded, not ${redisAdapterKind}`);
  }
  const { createClient } = require("redis");
  const pubClient = createClient({ url: redisUrl });
  const subClient = pubClient.duplicate();
  for (const c of [pubClient, subClient]) c.on("error", (err) => console.error("redis:", err.message));
  await Promise.all([pubClient.connect(), subClient.connect()]);
  if (redisAdapterKind === "sharded") {
    const { createShardedAdapter } = require("@socket.io/redis-adapter");
    io.adapter(createShardedAdapter(pubClient, subClient));
  } else {
    const { createAdapter } = require("@socket.io/redis-adapter");
    io.adapter(createAdapter(pubClient, subClient));
  }
}

attachRedisAdapter().then(
  () => {
    httpServer.listen(port, host, () => {
      const via = redisUrl ? ` (redis adapter: ${redisAdapterKind})` : "";
      console.log(`node socket.io peer listening on ${host}:${port}${via}`);
    });
  },
  (err) => {
    console.error("cannot start:", err.message);
    process.exit(1);
  },
);

function shutdown() {
  io.close();
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
