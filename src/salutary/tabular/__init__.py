"""Tabular files for the command line: read, validate, encode, write atomically.

:func:`load_table` reads one file of labeled rows the same way (a dataset to benchmark:
``salutary bench --data``), without standardizing it.

:func:`load_tables` reads a labeled, an unlabeled and a validation file (CSV or Parquet),
checks them and turns them into standardized feature matrices:

* features are every column except the target; numeric columns are used as they are,
  text (categorical) columns are one-hot encoded with categories taken from the union of
  the three files, so all three get the same column layout;
* a :class:`~sklearn.preprocessing.StandardScaler` fit on the labeled rows is applied to
  all three (constant columns stay finite);
* the target's labels are mapped to integer codes ``0..K-1`` in the sorted order of the
  labeled set's classes.

Every problem with the input raises :class:`InputError` with a one-line message that
names the file and, where it applies, the column and the row. Rows are numbered from 1
over the data rows (the header is not counted); for CSV files the line number in the
file is given as well, e.g. ``row 7 (line 8)``.

The package's modules: ``_read`` (files into :class:`Table`), ``_columns`` (one column:
parsed, checked), ``_tables`` (:func:`load_tables`), ``_write`` (the output).
"""

from salutary._io import atomic_write
from salutary.exceptions import InputError
from salutary.tabular._read import SUPPORTED_EXTENSIONS, Table, file_format, read_table
from salutary.tabular._tables import DataTable, Tables, load_table, load_tables
from salutary.tabular._write import check_budget, check_output, probe_directory, write_table

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "DataTable",
    "InputError",
    "Table",
    "Tables",
    "atomic_write",
    "check_budget",
    "check_output",
    "file_format",
    "load_table",
    "load_tables",
    "probe_directory",
    "read_table",
    "write_table",
]
