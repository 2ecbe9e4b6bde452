"""The project's own local fixture site: a Royal Road look-alike (same markup, our text)
with routes that misbehave, served on 127.0.0.1 for the tests and benchmarks."""
