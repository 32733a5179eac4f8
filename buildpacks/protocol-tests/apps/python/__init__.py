"""The protocol fixture app, Python edition.

buildpacks/protocol-tests/apps/node/index.js registers the same functions under
the same names; buildpacks/protocol-tests/run.py checks that both runtimes
answer cases.json alike.
"""

import json
import os
import sys

import gust


@gust.op('echo')
def echo(**arguments):
    return arguments


@gust.op('say')
def say(word):
    """Prints a line, and another in two pieces: protocol 2 tags both with the call's id."""
    print('said', word)
    sys.stderr.write('part')
    sys.stderr.write(f'ial {word}\n')
    return {'said': word}


@gust.op('fail')
def fail():
    raise gust.Error('nope', code=123)


@gust.op('crash')
def crash():
    raise RuntimeError('secret-detail: this must stay in the log')


@gust.op('infinite')
def infinite():
    return {'x': float('inf')}


@gust.handler('hello')
def hello(request):
    return f"hello {request.query.get('name', 'world')}\n"


@gust.handler('submit', methods=['POST'])
def submit(request):
    return {'received': request.json()}


@gust.before_save('cat')
def check_cat(record, original):
    if not record.get('name'):
        raise gust.Error('Missing cat name', code=400)
    record['name'] = record['name'].upper()
    return record


@gust.every('2m')
def meow():
    pass


@gust.handler('inside')
def inside(request):
    """What app code can see of the internal secret: nothing."""
    return {'token_in_environment': 'GUST_INTERNAL_TOKEN' in os.environ,
            'internal_header': any(k.lower() == 'x-gust-internal' for k in request.headers),
            'call_header': any(k.lower() == 'x-gust-call' for k in request.headers)}


@gust.handler('split')
def split(request):
    return gust.Response('x', headers={'X-Split': 'a\r\nSet-Cookie: evil=1'})


def mounted(environ, start_response):
    """A WSGI application under /mounted: what it sees of the path and headers."""
    body = json.dumps({'base': environ['SCRIPT_NAME'], 'rest': environ['PATH_INFO'] or '/',
                       'query': environ['QUERY_STRING'], 'internal_header': 'HTTP_X_GUST_INTERNAL' in environ})
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body.encode()]


gust.mount('/mounted', mounted)
