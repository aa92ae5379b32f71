"""Event contracts and the plumbing every Panjereh service uses."""
