"""What is about distributions themselves, whoever handles them.

- :mod:`.names`: project names, versions, wheel and sdist filenames, ``+fs.N``;
- :mod:`.record`: RECORD files (parse, render, digests);
- :mod:`.metadata`: the one core-metadata reader (METADATA, PKG-INFO);
- :mod:`.distinfo`: a wheel's ``.dist-info`` folder held to its filename,
  its WHEEL file, and its RECORD read within caps;
- :mod:`.sdistinfo`: an sdist's PKG-INFO held to its filename, read without unpacking.

It imports only :mod:`fromsource.errors` and :mod:`fromsource.bounded`, so
verify, the index and the builder can all use it.  Import the modules
themselves: this package re-exports nothing, so that the names every
module imports do not pull in the metadata parser.
"""

__all__: list[str] = []
