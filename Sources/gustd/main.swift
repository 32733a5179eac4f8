// Placeholder until the router daemon lands.
