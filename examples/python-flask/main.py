"""A Flask app served by Gust, beside an op, a handler and a schedule in the same process.

Flask answers every path except Gust's own: /_/... (ops, records, health) and
/status, which gust.handler registers and so wins over the mount.
"""

import os
import time

import gust
from flask import Flask, Response, jsonify, request

web = Flask(__name__)
TODOS = {1: 'Feed the cat'}


@web.get('/')
def index():
    return 'Hello from Flask, through Gust!\n'


@web.get('/todos/<int:todo_id>')
def todo(todo_id):
    if todo_id not in TODOS:
        return jsonify(error='no such todo'), 404
    return jsonify(id=todo_id, title=TODOS[todo_id], script_root=request.script_root, path=request.path)


@web.post('/todos')
def add_todo():
    todo_id = max(TODOS) + 1
    TODOS[todo_id] = request.get_json()['title']
    return jsonify(id=todo_id, title=TODOS[todo_id]), 201


@web.get('/countdown')
def countdown():
    """Streams: each line reaches the client as it is yielded.

    With ?until=PATH it waits (at most 20 s) for that file before the last
    line, so a test can see the first line arrive before the rest exists.
    """
    until = request.args.get('until')

    def lines():
        yield 'three\n'
        deadline = time.time() + 20
        while until and not os.path.exists(until) and time.time() < deadline:
            time.sleep(0.05)
        yield 'two\n'
        yield 'one\n'
    return Response(lines(), mimetype='text/plain')


# The whole Flask app at the root; gust.mount('/web', web) would put it under /web.
gust.mount('/', web)


@gust.op('todos:count')
def count_todos():
    return {'count': len(TODOS)}


@gust.handler('/status')
def status(request):
    return {'todos': len(TODOS)}


@gust.every('1h')
def tidy():
    """Scheduled beside the web app: drops todos past the first hundred."""
    for todo_id in sorted(TODOS)[100:]:
        del TODOS[todo_id]
