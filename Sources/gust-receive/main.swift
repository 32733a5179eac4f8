// Placeholder until the receive pipeline lands.
