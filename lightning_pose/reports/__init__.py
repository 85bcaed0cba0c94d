"""Reports from finished runs: tables (CSV and markdown) of metrics, intervals and comparisons,
read from run folders. Nothing here trains or evaluates a model; the metrics compute, these
modules present."""
