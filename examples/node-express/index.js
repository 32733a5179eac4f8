'use strict';
// An Express app served by Gust, beside an op, a handler and a schedule in the same process.
// Express answers every path except Gust's own: /_/... (ops, records, health) and
// /status, which gust.handler registers and so wins over the mount.
const fs = require('node:fs');
const express = require('express');
const gust = require('gust');

const web = express();
web.use(express.json());
const todos = new Map([[1, 'Feed the cat']]);

web.get('/', (req, res) => res.type('text/plain').send('Hello from Express, through Gust!\n'));

web.get('/todos/:id', (req, res) => {
  const id = Number(req.params.id);
  if (!todos.has(id)) return res.status(404).json({ error: 'no such todo' });
  return res.json({ id, title: todos.get(id), baseUrl: req.baseUrl, path: req.path });
});

web.post('/todos', (req, res) => {
  const id = Math.max(...todos.keys()) + 1;
  todos.set(id, req.body.title);
  res.status(201).json({ id, title: todos.get(id) });
});

// Streams: each line reaches the client as it is written. With ?until=PATH it
// waits (at most 20 s) for that file before the last lines, so a test can see
// the first line arrive before the rest exists.
web.get('/countdown', async (req, res) => {
  res.type('text/plain');
  res.write('three\n');
  const deadline = Date.now() + 20_000;
  while (req.query.until && !fs.existsSync(req.query.until) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  res.write('two\n');
  res.end('one\n');
});

// The whole Express app at the root; gust.mount('/web', web) would put it under /web.
gust.mount('/', web);

gust.op('todos:count', () => ({ count: todos.size }));

gust.handler('/status', () => ({ todos: todos.size }));

// Scheduled beside the web app: drops todos past the first hundred.
gust.every('1h', function tidy() {
  for (const id of [...todos.keys()].sort((a, b) => a - b).slice(100)) todos.delete(id);
});
