"""Training the learned obfuscator against a reconstruction adversary."""
