"""The Panjereh services, each a self-contained folder of the same shape."""
