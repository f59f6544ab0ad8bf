"""The command-line programs: ``train`` (a classifier on a folder of images) and ``predict``.

Each module has a ``main(argv=None)`` that returns the exit status; the scripts in
``examples/`` call them. What they share:

- :mod:`nnfs.app.cli.options`: the parser (one-line errors) and the option types;
- :mod:`nnfs.app.cli.process`: SIGINT and SIGTERM alike, exit statuses, the launcher the
  scripts use (standard library only, armed before NumPy loads);
- :mod:`nnfs.app.cli.console`: every printed line, safe whatever the names in it;
- :mod:`nnfs.app.cli.outputs`: the files a training run writes, checked before it starts;
- :mod:`nnfs.app.cli.lock`: one training run at a time per ``--save``.

Importing this package loads nothing else, so :mod:`~nnfs.app.cli.process` stays light.
"""
