"""The `geoha` commands, one module per group; geoha.cli imports a module only when one of
its commands runs."""
