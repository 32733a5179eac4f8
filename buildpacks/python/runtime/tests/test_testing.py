"""gust.testing: an app's functions called in-process as gustd calls them, with an in-memory record store."""

import contextlib
import io
import os
import tempfile
import textwrap
import unittest

import gust
from gust import mounts
from gust.testing import Client

APP = '''
import gust

@gust.op('food:buy')
def buy(food, quantity=1):
    if food == 'mud':
        raise gust.Error('Not food', code=123)
    return {'food': food, 'quantity': quantity}

@gust.op('cat:adopt')
def adopt(name):
    return gust.records.save('cat', {'name': name})

@gust.op('cat:count')
def count():
    return len(gust.records.find('cat'))

@gust.handler('/hello', methods=['GET', 'POST'])
def hello(request):
    if request.method == 'POST':
        return gust.Response({'got': request.json()}, status=201, headers={'X-Seen': request.headers.get('X-Name', '')})
    return 'Hello, ' + request.query.get('name', 'world')

fed = []

@gust.every('1h', params={'food': 'tuna'})
def feed(food):
    fed.append(food)

@gust.before_save('cat')
def check_cat(record, original):
    if not record.get('name'):
        raise gust.Error('Missing cat name', code=422)
    record['name'] = record['name'].capitalize()
    return record

@gust.after_save('cat')
def log_cat(record, original):
    gust.records.save('event', {'cat': record['_id'], 'new': original is None})
    # Writing its own record again does not call this hook again.
    gust.records.save('cat', {'_id': record['_id'], 'seen': True})

@gust.before_delete('cat')
def keep_tom(record, original):
    if record['name'] == 'Tom':
        raise gust.Error('Tom stays', code=403)
'''


class ClientTests(unittest.TestCase):
    def setUp(self):
        self._saved = gust.registry
        self.addCleanup(setattr, gust, "registry", self._saved)
        gust.registry = gust._Registry()
        self._saved_mounts = list(mounts._mounts)
        self.addCleanup(lambda: (mounts._mounts.clear(), mounts._mounts.extend(self._saved_mounts)))
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        with open(os.path.join(directory.name, "main.py"), "w") as file:
            file.write(textwrap.dedent(APP))
        self.stderr = io.StringIO()
        redirect = contextlib.redirect_stderr(self.stderr)
        redirect.__enter__()
        self.addCleanup(redirect.__exit__, None, None, None)
        self.client = Client(directory.name)
        self.addCleanup(self.client.close)

    def test_an_op_takes_json_arguments_and_returns_its_result(self):
        self.assertEqual(self.client.op("food:buy", food="tuna", quantity=2), {"food": "tuna", "quantity": 2})

    def test_an_ops_errors_are_what_a_caller_gets(self):
        with self.assertRaises(gust.Error) as raised:
            self.client.op("food:buy", food="mud")
        self.assertEqual((raised.exception.code, raised.exception.message), (123, "Not food"))
        with self.assertRaises(gust.Error) as raised:
            self.client.op("food:buy", colour="red")
        self.assertEqual(raised.exception.code, 400)
        self.assertIn("bad arguments for op food:buy", raised.exception.message)
        with self.assertRaises(gust.Error) as raised:
            self.client.op("nope")
        self.assertEqual(raised.exception.code, 404)

    def test_a_handler_gets_a_request(self):
        answer = self.client.get("/hello", query={"name": "Tom"})
        self.assertEqual((answer.status, answer.text, answer.headers["content-type"]), (200, "Hello, Tom", "text/plain; charset=utf-8"))
        answer = self.client.post("/hello/", json={"a": 1}, headers={"X-Name": "me"})
        self.assertEqual((answer.status, answer.json(), answer.headers["x-seen"]), (201, {"got": {"a": 1}}, "me"))
        answer = self.client.delete("/hello")
        self.assertEqual((answer.status, answer.headers["allow"]), (405, "GET, POST"))
        self.assertEqual(self.client.get("/missing").status, 404)

    def test_a_schedule_runs_with_its_params_or_others(self):
        import main
        self.client.schedule("feed")
        self.client.schedule("feed", food="salmon")
        self.assertEqual(main.fed, ["tuna", "salmon"])

    def test_a_hook_takes_a_record(self):
        self.assertEqual(self.client.hook("before_save", "cat", {"name": "tom"}), {"name": "Tom"})
        with self.assertRaises(gust.Error) as raised:
            self.client.hook("before_save", "cat", {})
        self.assertEqual(raised.exception.code, 422)

    def test_records_work_in_memory_with_the_hooks_firing(self):
        cat = self.client.op("cat:adopt", name="tom")
        self.assertEqual(cat["name"], "Tom")                       # before_save ran
        self.assertEqual(self.client.records.get("cat", cat["_id"])["seen"], True)   # after_save ran, once
        self.assertEqual(self.client.records.find("event", cat=cat["_id"]), [
            {"cat": cat["_id"], "new": True, "_id": self.client.records.all("event")[0]["_id"],
             "_created_at": self.client.records.all("event")[0]["_created_at"],
             "_updated_at": self.client.records.all("event")[0]["_updated_at"]},
        ])
        self.assertEqual(self.client.op("cat:count"), 1)
        with self.assertRaises(gust.Error) as raised:
            self.client.op("cat:adopt", name="")
        self.assertEqual((raised.exception.code, raised.exception.message), (422, "Missing cat name"))
        with self.assertRaises(gust.Error) as raised:
            self.client.records.delete("cat", cat)
        self.assertEqual(raised.exception.code, 403)
        self.assertEqual(self.client.op("cat:count"), 1)

    def test_records_are_back_to_gustds_channel_after_close(self):
        self.client.close()
        with self.assertRaisesRegex(RuntimeError, "inside a Gust instance"):
            gust.records.find("cat")


if __name__ == "__main__":
    unittest.main()
