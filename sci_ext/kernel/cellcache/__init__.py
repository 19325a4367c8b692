"""The ``%%cached`` engine: key a cell, restore it on a hit, run and store it on a miss.

Modules, in the order a cell goes through them:

* :mod:`.analysis` (what the code reads and binds, from its AST) and :mod:`.hidden`
  (state read without a name: RNG state, ``globals()``, module attributes);
* :mod:`.plan`: the key of a cell, or :class:`~.plan.Uncacheable` with the one-line reason;
* :mod:`.restore`: a hit (restore variables, replay outputs);
* :mod:`.run`: the orchestration, and a miss (run live, record, store);
* :mod:`.capture` (record outputs live), :mod:`.aliasing` (sharing between variables),
  :mod:`.source` (tracebacks name the cell as typed);
* :mod:`.explain` (why a cell missed) and :mod:`.safety` (what a miss touched that the
  analysis did not key: files, code compiled from strings).

Nothing is imported here: the package loads when ``%%cached`` first runs.
"""
