"""The privacy-utility-latency evaluation of every obfuscator, and its report."""
