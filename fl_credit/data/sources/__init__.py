"""The data sources, one module per ``data.kind``, each registering its loader (see
:mod:`fl_credit.data.registry`)."""
