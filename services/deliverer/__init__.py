"""The deliverer service: sends published digests by e-mail, webhook and git (the `deliver` queue)."""
