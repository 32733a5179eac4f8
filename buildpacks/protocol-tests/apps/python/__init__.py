"""The protocol fixture app, Python edition.

buildpacks/protocol-tests/apps/node/index.js registers the same functions under
the same names; buildpacks/protocol-tests/run.py checks that both runtimes
answer cases.json alike.
"""

import gust


@gust.op('echo')
def echo(**arguments):
    return arguments


@gust.op('fail')
def fail():
    raise gust.Error('nope', code=123)


@gust.op('crash')
def crash():
    raise RuntimeError('secret-detail: this must stay in the log')


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
