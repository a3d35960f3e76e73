"""SQL over the projection tables, one module per resource. Values always go
in as bind parameters; only column names from this code are formatted in."""
