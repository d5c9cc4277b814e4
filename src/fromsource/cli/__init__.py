"""Command-line entry points: thin wrappers that parse, call one core function and print."""
