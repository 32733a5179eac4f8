PRICES = {'salmon': 4.5, 'tuna': 3.0, 'kibble': 1.25}
