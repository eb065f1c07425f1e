"""The task model (NanoDet) split into a client head and a server tail, and its assets."""
