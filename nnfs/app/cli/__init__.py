"""The command-line programs: ``train`` (a classifier on a folder of images) and ``predict``.

Each module has a ``main(argv=None)`` that returns the exit status; the scripts in
``examples/`` call them. :mod:`nnfs.app.cli.options` holds the parser and option types
they share.
"""
