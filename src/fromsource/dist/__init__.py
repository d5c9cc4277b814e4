"""What is about distributions themselves: names, filenames, RECORD, ``.dist-info``, metadata.

Pure vocabulary every part shares (:mod:`.names`, :mod:`.record`) and the
readers of a wheel's ``.dist-info`` folder (:mod:`.distinfo`).  It depends
only on :mod:`fromsource.errors` and :mod:`fromsource.bounded`, so verify,
the index and the builder can all import it.
"""
