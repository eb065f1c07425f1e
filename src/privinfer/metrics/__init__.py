"""Privacy and utility metrics: how much of an image a reconstruction gives away, and at what cost."""
