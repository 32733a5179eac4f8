"""The cats app: the example from Gust's design, one function of each kind."""

import gust

from .food import PRICES


@gust.before_save('cat')
def validate_cat_name(record, original):
    if not record.get('name'):
        raise gust.Error('Missing cat name', code=400)
    return record


@gust.every('2m')
def meow_for_food():
    print('Meow Meow!')


@gust.op('food:buy')
def buy_food(food):
    if food not in PRICES:
        raise gust.Error(f'No {food} in the shop', code=404)
    return {'success': True, 'food': food, 'price': PRICES[food]}


@gust.handler('cat/feed', methods=['GET'])
def feed(request):
    return 'Meow! Thanks!\n'
