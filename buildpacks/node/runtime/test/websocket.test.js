'use strict';
// WebSockets in the Node runtime: a `ws` server listening on gust.server takes the
// upgrades gustd hands on, over the runtime's real Unix socket; Gust's own surface
// never reaches it. `ws` is Debian's node-ws (scripts/install-deps.sh).
//
//   node --test buildpacks/node/runtime/test/

const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const gust = require('../gust/index.js');
const { serve } = require('../gust/server.js');

// Where Debian puts it (require.resolve's `paths` would look in node_modules below them, not in them).
const wsRoot = ['/usr/share/nodejs/ws', '/usr/lib/nodejs/ws'].find((p) => fs.existsSync(path.join(p, 'package.json')));
const { WebSocketServer } = wsRoot ? require(wsRoot) : { WebSocketServer: null };

// A client frame (masked, RFC 6455 5.3).
function frame(opcode, payload) {
  const mask = crypto.randomBytes(4);
  const length = payload.length;
  const head = length < 126 ? Buffer.from([0x80 | opcode, 0x80 | length])
    : Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | 126]), Buffer.from([length >> 8, length & 0xff])]);
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
  return Buffer.concat([head, mask, body]);
}

// Reads from `socket` until `done(bytes)` says so (at most 10 s).
function readUntil(socket, done) {
  return new Promise((resolve, reject) => {
    let seen = Buffer.alloc(0);
    const timer = setTimeout(() => reject(new Error(`timed out with ${seen}`)), 10000);
    const onData = (chunk) => {
      seen = Buffer.concat([seen, chunk]);
      if (done(seen)) {
        clearTimeout(timer);
        socket.off('data', onData);
        resolve(seen);
      }
    };
    socket.on('data', onData);
    socket.once('close', () => { clearTimeout(timer); resolve(seen); });
  });
}

function handshake(socketPath, target) {
  const socket = net.connect(socketPath);
  socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
    + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Gust-Internal: secret\r\n\r\n');
  return socket;
}

test('a ws server on gust.server echoes through the runtime; /_gust and /_ never reach it', { skip: !WebSocketServer && 'node-ws is not installed' }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gust-ws-'));
  const socketPath = path.join(dir, 'instance.sock');
  const seen = [];
  const wss = new WebSocketServer({ server: gust.server });
  wss.on('connection', (ws, req) => {
    seen.push({ url: req.url, internal: req.headers['x-gust-internal'] || null });
    ws.on('message', (data, binary) => ws.send(binary ? data : `echo ${data}`));
  });
  const server = serve(socketPath);
  try {
    await new Promise((resolve) => server.once('listening', resolve));
    const socket = handshake(socketPath, '/chat?room=1');
    const head = (await readUntil(socket, (b) => b.includes('\r\n\r\n'))).toString();
    assert.match(head, /^HTTP\/1\.1 101 /);
    assert.match(head, /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/);
    socket.write(frame(1, Buffer.from('hello')));
    const echoed = await readUntil(socket, (b) => b.length >= 12);
    assert.deepEqual(echoed, Buffer.concat([Buffer.from([0x81, 10]), Buffer.from('echo hello')]));
    socket.write(frame(8, Buffer.from([0x03, 0xe8])));
    const closed = await readUntil(socket, (b) => b.length >= 4);
    assert.deepEqual(closed.subarray(0, 4), Buffer.from([0x88, 2, 0x03, 0xe8]));
    socket.destroy();
    assert.deepEqual(seen, [{ url: '/chat?room=1', internal: null }]);

    for (const target of ['/_gust/health', '/_/functions/x']) {
      const refused = (await readUntil(handshake(socketPath, target), (b) => b.includes('\r\n\r\n'))).toString();
      assert.match(refused, /^HTTP\/1\.1 404 /, target);
    }
    assert.equal(seen.length, 1);
  } finally {
    wss.close();
    await new Promise((resolve) => server.close(resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
