"""The Flask example's own tests: its routes, op, handler and schedule, called as gustd calls them."""

import os
import unittest

from gust.testing import Client

APP = os.path.join(os.path.dirname(__file__), '..')


class FlaskAppTests(unittest.TestCase):
    def setUp(self):
        self.client = Client(APP)
        self.addCleanup(self.client.close)

    def test_flask_answers_its_routes(self):
        answer = self.client.get('/todos/1')
        self.assertEqual(answer.status, 200)
        self.assertEqual(answer.json(), {'id': 1, 'title': 'Feed the cat', 'script_root': '', 'path': '/todos/1'})
        self.assertEqual(self.client.get('/todos/99').status, 404)

    def test_a_posted_todo_is_counted_by_the_op(self):
        before = self.client.op('todos:count')['count']
        answer = self.client.post('/todos', json={'title': 'Buy tuna'})
        self.assertEqual(answer.status, 201)
        self.assertEqual(self.client.op('todos:count'), {'count': before + 1})

    def test_gusts_handler_wins_for_its_path(self):
        self.assertEqual(set(self.client.get('/status').json()), {'todos'})

    def test_the_countdown_streams_every_line(self):
        self.assertEqual(self.client.get('/countdown').text, 'three\ntwo\none\n')

    def test_the_schedule_runs(self):
        self.client.schedule('tidy')


if __name__ == '__main__':
    unittest.main()
