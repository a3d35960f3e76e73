"""Wire schemas: one module per resource, in families `XPublic` (one item) and
`XsPublic{data, count}` (a list). Never domain events: each is an explicit
view of a projection row."""
