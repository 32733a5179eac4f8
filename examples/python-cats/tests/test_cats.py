"""The cats example's own tests, with Gust's test client (gust.testing)."""

import os
import unittest

import gust
from gust.testing import Client

APP = os.path.join(os.path.dirname(__file__), '..')


class CatsTests(unittest.TestCase):
    def setUp(self):
        self.client = Client(APP)
        self.addCleanup(self.client.close)

    def test_buying_food(self):
        self.assertEqual(self.client.op('food:buy', food='tuna'), {'success': True, 'food': 'tuna', 'price': 3.0})
        with self.assertRaises(gust.Error) as raised:
            self.client.op('food:buy', food='mud')
        self.assertEqual(raised.exception.code, 404)

    def test_feeding(self):
        self.assertEqual(self.client.get('/cat/feed').text, 'Meow! Thanks!\n')

    def test_a_cat_needs_a_name(self):
        self.assertEqual(self.client.records.save('cat', {'name': 'Tom'})['name'], 'Tom')
        with self.assertRaises(gust.Error) as raised:
            self.client.records.save('cat', {'colour': 'grey'})
        self.assertEqual((raised.exception.code, raised.exception.message), (400, 'Missing cat name'))
        self.assertEqual([cat['name'] for cat in self.client.records.all('cat')], ['Tom'])

    def test_the_schedule_meows(self):
        self.client.schedule('meow_for_food')


if __name__ == '__main__':
    unittest.main()
