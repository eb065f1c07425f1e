"""Attacks on what servers see: learned inversion (strong, weak, floor) and white-box optimisation.

Any attack runs against any obfuscator's outputs (``observe``): defences and attacks are decoupled.
"""
