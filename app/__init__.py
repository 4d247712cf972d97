"""The reference application that a geoha deployment serves (API and web)."""
