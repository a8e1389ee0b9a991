"""KLUE readers: one module per task turns official release files or hub exports into records.

Each task module exposes ``read(path, *, labeled=True, split="dev")`` and
``from_hub_rows(rows, *, source, labeled=True, split="dev")``; a task class names its reader module
(``Task.reader``), so ``get_task(name).read(path)`` is the one entry point that takes a task name.
:mod:`mtl.data.table` reads the table files of tasks declared in a config.
"""
