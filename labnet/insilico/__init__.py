"""insilico layer."""
