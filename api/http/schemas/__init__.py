"""Request and response bodies of the HTTP API: `common` (field types, the error body) and one
module per resource, named as its routes module is."""
