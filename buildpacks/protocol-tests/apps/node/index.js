'use strict';
// The protocol fixture app, Node edition.
//
// buildpacks/protocol-tests/apps/python/__init__.py registers the same functions
// under the same names; buildpacks/protocol-tests/run.py checks that both
// runtimes answer cases.json alike.

const gust = require('gust');

gust.op('echo', (args) => args);

// Prints a line, and another in two pieces: protocol 2 tags both with the call's id.
gust.op('say', ({ word }) => {
  console.log('said', word);
  process.stderr.write('part');
  process.stderr.write(`ial ${word}\n`);
  return { said: word };
});

gust.op('fail', () => {
  throw new gust.Error('nope', { code: 123 });
});

gust.op('crash', () => {
  throw new Error('secret-detail: this must stay in the log');
});

gust.op('infinite', () => ({ x: Infinity }));

gust.handler('hello', (request) => `hello ${request.query.name || 'world'}\n`);

gust.handler('submit', { methods: ['POST'] }, (request) => ({ received: request.json() }));

// Named like the Python function so that both manifests are identical.
// eslint-disable-next-line camelcase
gust.beforeSave('cat', function check_cat(record) {
  if (!record.name) throw new gust.Error('Missing cat name', { code: 400 });
  record.name = record.name.toUpperCase();
  return record;
});

gust.every('2m', function meow() {});

// What app code can see of the internal secret: nothing.
gust.handler('inside', (request) => ({
  token_in_environment: 'GUST_INTERNAL_TOKEN' in process.env,
  internal_header: Object.keys(request.headers).some((k) => k.toLowerCase() === 'x-gust-internal'),
  call_header: Object.keys(request.headers).some((k) => k.toLowerCase() === 'x-gust-call'),
}));

gust.handler('split', () => new gust.Response('x', { headers: { 'X-Split': 'a\r\nSet-Cookie: evil=1' } }));

// A (req, res, next) app under /mounted: what it sees of the path and headers.
gust.mount('/mounted', (req, res) => {
  const [rest, query = ''] = req.url.split('?');
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify({ base: req.baseUrl, rest, query, internal_header: 'x-gust-internal' in req.headers }));
});
