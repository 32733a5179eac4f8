'use strict';
// Serves an Express or Connect app (or any (req, res, next) handler) beside the
// app's functions, on the runtime's own HTTP server:
//
//   const app = express();
//   gust.mount('/', app);          // or gust.mount('/api', app)
//
// A request whose path has no handler registered with gust.handler goes to the
// mount with the longest prefix that contains it, with req.url relative to the
// prefix and req.baseUrl the prefix (as Express's own app.use('/api', sub) does).
// The internal surface (/_gust/...) and paths under /_/ are never a mount's.
// req and res are Node's own, so the body streams in and res.write streams out.

const mounts = []; // { prefix, app }, longest prefix first

function normalize(prefix) {
  return '/' + String(prefix).replace(/^\/+|\/+$/g, '');
}

function mount(prefix, app) {
  const normalized = normalize(prefix);
  if (typeof app !== 'function') {
    throw new TypeError(`gust.mount(${JSON.stringify(prefix)}, app): app must be an Express or Connect app or a (req, res, next) function`);
  }
  if (normalized === '/_' || normalized.startsWith('/_/') || normalized.toLowerCase().startsWith('/_gust')) {
    throw new Error(`gust.mount: ${JSON.stringify(prefix)} is Gust's own surface; mount elsewhere`);
  }
  if (mounts.some((m) => m.prefix === normalized)) throw new Error(`gust.mount: something is already mounted at ${JSON.stringify(normalized)}`);
  mounts.push({ prefix: normalized, app });
  mounts.sort((a, b) => b.prefix.length - a.prefix.length);
  return app;
}

function contains(prefix, pathname) {
  return prefix === '/' || pathname === prefix || pathname.startsWith(prefix + '/');
}

// The mount serving `pathname` (decoded, canonical), or undefined: Gust's handlers and /_/ come first.
function find(pathname, handlers) {
  if (mounts.length === 0) return undefined;
  const first = pathname.replace(/^\/+/, '').split('/')[0];
  if (first === '_' || first.toLowerCase().startsWith('_gust')) return undefined;
  if (handlers.has('/' + pathname.replace(/^\/+|\/+$/g, ''))) return undefined;
  return mounts.find((m) => contains(m.prefix, pathname));
}

// A path segment encoded as gustd encodes it: what a URL path may carry stays as it is.
function encodeSegment(segment) {
  return encodeURIComponent(segment).replace(/%(3A|40|21|24|26|27|28|29|2A|2B|2C|3B|3D)/g, (e) => decodeURIComponent(e));
}

function answerError(res, status, message) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = Buffer.from(JSON.stringify({ code: status, error: message }));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length });
  res.end(body);
}

// Hands the request to a mount if one takes it (true), before anything of it is read.
function serve(req, res, pathname, handlers) {
  const mounted = find(pathname, handlers);
  if (!mounted) return false;
  delete req.headers['x-gust-internal'];
  for (let i = req.rawHeaders.length - 2; i >= 0; i -= 2) {
    if (req.rawHeaders[i].toLowerCase() === 'x-gust-internal') req.rawHeaders.splice(i, 2);
  }
  const query = req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : '';
  const rest = mounted.prefix === '/' ? pathname : pathname.slice(mounted.prefix.length);
  req.originalUrl = req.url;
  req.url = (rest.split('/').map(encodeSegment).join('/') || '/').replace(/^(?!\/)/, '/') + query;
  req.baseUrl = mounted.prefix === '/' ? '' : mounted.prefix;
  const failed = (e) => {
    process.stderr.write(`gust: mount ${mounted.prefix} raised:\n${e && e.stack ? e.stack : e}\n`);
    answerError(res, 500, `internal error in mount ${mounted.prefix}`);
  };
  // What the app passes on (no route of its own) is a 404, as for any path nothing serves.
  const next = (e) => (e ? failed(e) : answerError(res, 404, `no handler for ${pathname}`));
  try {
    const returned = mounted.app(req, res, next);
    if (returned && typeof returned.then === 'function') returned.then(undefined, failed);
  } catch (e) {
    failed(e);
  }
  return true;
}

module.exports = { mount, serve, find, mounts };
